using System.Linq.Expressions;
using System.Reflection;
using CloudEdge.Runtime.Persistence;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Activation;

/// <summary>A grain class registered with the silo (from AddGrains/AddGrain).</summary>
internal sealed record GrainClassRegistration(Type GrainClass);

/// <summary>How to build and schedule one grain class.</summary>
internal sealed class GrainClassInfo
{
    private readonly Func<object?[], object> construct;
    private readonly ParameterInfo[] parameters;
    private readonly PersistentStateAttribute?[] stateAttributes;

    public GrainClassInfo(Type grainClass)
    {
        ClassType = grainClass;
        GrainType = GrainTypeName(grainClass);
        Reentrant = grainClass.IsDefined(typeof(ReentrantAttribute), inherit: true);
        var constructor = grainClass.GetConstructors(BindingFlags.Public | BindingFlags.Instance)
            .OrderByDescending(c => c.GetParameters().Length)
            .FirstOrDefault() ?? throw new ArgumentException($"Grain class {grainClass.Name} has no public constructor.");
        parameters = constructor.GetParameters();
        stateAttributes = parameters.Select(p => p.GetCustomAttribute<PersistentStateAttribute>()).ToArray();
        for (var i = 0; i < parameters.Length; i++)
        {
            if (stateAttributes[i] is not null &&
                !(parameters[i].ParameterType.IsGenericType && parameters[i].ParameterType.GetGenericTypeDefinition() == typeof(IPersistentState<>)))
            {
                throw new ArgumentException($"Parameter '{parameters[i].Name}' of {grainClass.Name} has [PersistentState] but is not an IPersistentState<T>.");
            }
        }

        var args = Expression.Parameter(typeof(object?[]), "args");
        var newExpression = Expression.New(constructor, parameters.Select((p, i) =>
            (Expression)Expression.Convert(Expression.ArrayIndex(args, Expression.Constant(i)), p.ParameterType)));
        construct = Expression.Lambda<Func<object?[], object>>(Expression.Convert(newExpression, typeof(object)), args).Compile();
    }

    public Type ClassType { get; }

    public string GrainType { get; }

    public bool Reentrant { get; }

    public static string GrainTypeName(Type grainClass)
    {
        if (grainClass.GetCustomAttribute<GrainTypeAttribute>() is { } attribute)
        {
            return attribute.GrainType;
        }

        var name = grainClass.Name;
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick > 0)
        {
            name = name[..tick];
        }

        if (name.Length > 5 && name.EndsWith("Grain", StringComparison.Ordinal))
        {
            name = name[..^5];
        }

        return name.ToLowerInvariant();
    }

    /// <summary>Constructs the grain: DI for ordinary parameters, persistent state for [PersistentState] ones.</summary>
    public object Create(ActivationData activation, IServiceProvider services, List<IPersistentStateLoader> states)
    {
        var values = new object?[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            var parameter = parameters[i];
            if (stateAttributes[i] is { } attribute)
            {
                var state = PersistentStateFactory.Create(parameter.ParameterType.GetGenericArguments()[0], attribute, activation.GrainId, services);
                states.Add(state);
                values[i] = state;
            }
            else if (parameter.ParameterType == typeof(IGrainContext))
            {
                values[i] = activation;
            }
            else
            {
                var service = services.GetService(parameter.ParameterType);
                if (service is null && !parameter.HasDefaultValue)
                {
                    throw new InvalidOperationException(
                        $"Cannot activate {ClassType.Name}: no service of type {parameter.ParameterType.Name} is registered for constructor parameter '{parameter.Name}'.");
                }

                values[i] = service ?? parameter.DefaultValue;
            }
        }

        return construct(values);
    }
}

/// <summary>Grain type names to grain classes, and grain interfaces to the grain type that implements them.</summary>
internal sealed class GrainClassRegistry
{
    private readonly Dictionary<string, GrainClassInfo> byGrainType = new(StringComparer.Ordinal);
    private readonly Dictionary<Type, List<GrainClassInfo>> byInterface = [];

    public GrainClassRegistry(IEnumerable<GrainClassRegistration> registrations)
    {
        foreach (var grainClass in registrations.Select(r => r.GrainClass).Distinct())
        {
            var info = new GrainClassInfo(grainClass);
            if (byGrainType.TryGetValue(info.GrainType, out var existing))
            {
                throw new InvalidOperationException(
                    $"Grain classes {existing.ClassType.FullName} and {grainClass.FullName} both have grain type '{info.GrainType}'; give one a [GrainType(\"...\")].");
            }

            byGrainType.Add(info.GrainType, info);
            foreach (var grainInterface in grainClass.GetInterfaces().Where(IsGrainInterface))
            {
                if (!byInterface.TryGetValue(grainInterface, out var list))
                {
                    byInterface[grainInterface] = list = [];
                }

                list.Add(info);
            }
        }
    }

    public static bool IsGrainClass(Type type) =>
        type is { IsClass: true, IsAbstract: false, ContainsGenericParameters: false } && typeof(IGrain).IsAssignableFrom(type);

    public bool TryGetClass(string grainType, out GrainClassInfo info) => byGrainType.TryGetValue(grainType, out info!);

    public string GetGrainType(Type grainInterface)
    {
        if (!byInterface.TryGetValue(grainInterface, out var classes))
        {
            throw new ArgumentException(
                $"No registered grain class implements {grainInterface.Name}. Register it with silo.AddGrains(assembly) or silo.AddGrain<T>().");
        }

        if (classes.Count > 1)
        {
            // Prefer the class for which this interface is the most specific one it implements
            // (a subclass implementing a derived interface is addressed through that one).
            var exact = classes.Where(c => !c.ClassType.GetInterfaces().Any(i => i != grainInterface && grainInterface.IsAssignableFrom(i))).ToList();
            if (exact.Count == 1)
            {
                return exact[0].GrainType;
            }

            throw new ArgumentException(
                $"Grain interface {grainInterface.Name} is implemented by several grain classes ({string.Join(", ", classes.Select(c => c.ClassType.Name))}); " +
                "get the grain by GrainId to choose one.");
        }

        return classes[0].GrainType;
    }

    private static bool IsGrainInterface(Type type) =>
        typeof(IGrain).IsAssignableFrom(type) && type != typeof(IGrain) && type != typeof(IGrainWithStringKey) &&
        type != typeof(IGrainWithGuidKey) && type != typeof(IGrainWithIntegerKey) && type != typeof(IRemindable);
}
