using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;
using CloudEdge.Runtime.Copying;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.References;

internal enum ReturnKind
{
    Task,
    TaskOfT,
    ValueTask,
    ValueTaskOfT,
}

/// <summary>
/// Everything the runtime needs to call one grain interface method, computed once: its identity
/// (interface, name, id), its turn attributes, which arguments need copying, and a compiled invoker.
/// </summary>
internal abstract class MethodDescriptor
{
    private static readonly ConcurrentDictionary<MethodInfo, MethodDescriptor> Cache = new(ReferenceEqualityComparer.Instance);

    protected MethodDescriptor(MethodInfo method, ReturnKind kind)
    {
        Method = method;
        InterfaceType = method.DeclaringType!;
        InterfaceName = InterfaceType.Name;
        MethodName = method.Name;
        DisplayName = $"{InterfaceName}.{MethodName}";
        ActivityName = $"{InterfaceName}/{MethodName}";
        MethodId = ComputeMethodId(method);
        Kind = kind;
        AlwaysInterleave = method.IsDefined(typeof(AlwaysInterleaveAttribute), inherit: false);
        ReadOnly = method.IsDefined(typeof(ReadOnlyAttribute), inherit: false);
        OneWay = method.IsDefined(typeof(OneWayAttribute), inherit: false);
        var parameters = method.GetParameters();
        Parameters = parameters;
        CopyArgument = new bool[parameters.Length];
        ArgumentCopiers = new Func<object?, object?>[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            CopyArgument[i] = !parameters[i].IsDefined(typeof(ImmutableAttribute), inherit: false) &&
                              !DeepCopier.IsImmutableDeclaredType(parameters[i].ParameterType);
            AnyArgumentCopy |= CopyArgument[i];
            ArgumentCopiers[i] = DeepCopier.CreateBoxedCopier(parameters[i].ParameterType);
        }

        var resultImmutable = method.ReturnParameter.IsDefined(typeof(ImmutableAttribute), inherit: false) ||
                              method.IsDefined(typeof(ImmutableAttribute), inherit: false);
        CopyResult = !resultImmutable && kind is ReturnKind.TaskOfT or ReturnKind.ValueTaskOfT &&
                     !DeepCopier.IsImmutableDeclaredType(method.ReturnType.GetGenericArguments()[0]);
        if (OneWay && kind is ReturnKind.TaskOfT or ReturnKind.ValueTaskOfT)
        {
            throw new InvalidOperationException($"{DisplayName} is [OneWay] and must return Task or ValueTask.");
        }
    }

    public MethodInfo Method { get; }

    public Type InterfaceType { get; }

    public string InterfaceName { get; }

    public string MethodName { get; }

    /// <summary>Interface.Method, for errors and metrics.</summary>
    public string DisplayName { get; }

    /// <summary>Interface/Method, the span name (like Orleans' and gRPC's convention).</summary>
    public string ActivityName { get; }

    /// <summary>A stable id of the method within its interface: a hash of its signature, so remote silos agree without a table.</summary>
    public int MethodId { get; }

    public ReturnKind Kind { get; }

    public bool AlwaysInterleave { get; }

    public bool ReadOnly { get; }

    public bool OneWay { get; }

    public ParameterInfo[] Parameters { get; }

    public bool[] CopyArgument { get; }

    public bool AnyArgumentCopy { get; }

    private Func<object?, object?>[] ArgumentCopiers { get; }

    public bool CopyResult { get; }

    public static MethodDescriptor Get(MethodInfo method) =>
        Cache.TryGetValue(method, out var descriptor) ? descriptor : Cache.GetOrAdd(method, Create(method));

    /// <summary>Creates the request for a call through a reference, copying arguments; returns what the proxy returns.</summary>
    public abstract object InvokeFromReference(GrainReference reference, object?[] arguments);

    /// <summary>Creates the request that a remote message decodes into (the same shape as a local call).</summary>
    public abstract Request CreateRequest(GrainId target, object?[] arguments);

    public void CopyArguments(object?[] arguments)
    {
        if (!AnyArgumentCopy)
        {
            return;
        }

        for (var i = 0; i < arguments.Length; i++)
        {
            if (CopyArgument[i])
            {
                arguments[i] = ArgumentCopiers[i](arguments[i]);
            }
        }
    }

    private static int ComputeMethodId(MethodInfo method)
    {
        var signature = $"{method.DeclaringType!.FullName}.{method.Name}({string.Join(",", method.GetParameters().Select(p => p.ParameterType.FullName ?? p.ParameterType.Name))})";
        var hash = 2166136261u;
        foreach (var c in signature)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)hash;
    }

    private static MethodDescriptor Create(MethodInfo method)
    {
        var returnType = method.ReturnType;
        (ReturnKind kind, Type result) = returnType switch
        {
            _ when returnType == typeof(Task) => (ReturnKind.Task, typeof(object)),
            _ when returnType == typeof(ValueTask) => (ReturnKind.ValueTask, typeof(object)),
            { IsGenericType: true } when returnType.GetGenericTypeDefinition() == typeof(Task<>) => (ReturnKind.TaskOfT, returnType.GetGenericArguments()[0]),
            { IsGenericType: true } when returnType.GetGenericTypeDefinition() == typeof(ValueTask<>) => (ReturnKind.ValueTaskOfT, returnType.GetGenericArguments()[0]),
            _ => throw new InvalidOperationException(
                $"Grain method {method.DeclaringType?.Name}.{method.Name} returns {returnType.Name}; grain methods must return Task, Task<T>, ValueTask or ValueTask<T>."),
        };

        return (MethodDescriptor)Activator.CreateInstance(typeof(MethodDescriptor<>).MakeGenericType(result), method, kind)!;
    }
}

internal sealed class MethodDescriptor<TResult> : MethodDescriptor
{
    private static readonly Task<TResult> CompletedDefault = Task.FromResult(default(TResult)!);

    public MethodDescriptor(MethodInfo method, ReturnKind kind) : base(method, kind)
    {
        Invoker = CompileInvoker(method, kind);
    }

    /// <summary>Calls the method on a grain instance; the result is always a <see cref="Task{TResult}"/>.</summary>
    public Func<object, object?[], Task<TResult>> Invoker { get; }

    public override object InvokeFromReference(GrainReference reference, object?[] arguments)
    {
        CopyArguments(arguments);
        var task = reference.Runtime.Invoke(reference, this, arguments);
        return Kind switch
        {
            ReturnKind.TaskOfT or ReturnKind.Task => task,
            ReturnKind.ValueTaskOfT => new ValueTask<TResult>(task),
            _ => new ValueTask(task),
        };
    }

    public override Request CreateRequest(GrainId target, object?[] arguments) => new Message<TResult>(target, this, arguments);

    public TResult CopyResultValue(TResult value) => CopyResult ? DeepCopier.Copy(value) : value;

    private static Func<object, object?[], Task<TResult>> CompileInvoker(MethodInfo method, ReturnKind kind)
    {
        var grain = Expression.Parameter(typeof(object), "grain");
        var args = Expression.Parameter(typeof(object?[]), "args");
        var parameters = method.GetParameters();
        var callArgs = new Expression[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            callArgs[i] = Expression.Convert(Expression.ArrayIndex(args, Expression.Constant(i)), parameters[i].ParameterType);
        }

        // The grain's class was checked to implement the interface when the reference was made, so the
        // invoker reinterprets instead of paying an interface cast on every call.
        var reinterpret = typeof(Unsafe).GetMethod(nameof(Unsafe.As), 1, [typeof(object)])!.MakeGenericMethod(method.DeclaringType!);
        Expression call = Expression.Call(Expression.Call(reinterpret, grain), method, callArgs);
        call = kind switch
        {
            ReturnKind.TaskOfT => call,
            ReturnKind.Task => Expression.Call(typeof(MethodDescriptor<TResult>).GetMethod(nameof(FromTask), BindingFlags.Static | BindingFlags.NonPublic)!, call),
            ReturnKind.ValueTask => Expression.Call(typeof(MethodDescriptor<TResult>).GetMethod(nameof(FromValueTask), BindingFlags.Static | BindingFlags.NonPublic)!, call),
            _ => Expression.Call(typeof(MethodDescriptor<TResult>).GetMethod(nameof(FromValueTaskOfT), BindingFlags.Static | BindingFlags.NonPublic)!, call),
        };

        return Expression.Lambda<Func<object, object?[], Task<TResult>>>(call, grain, args).Compile();
    }

    private static Task<TResult> FromTask(Task task) =>
        task.IsCompletedSuccessfully ? CompletedDefault : Await(task);

    private static async Task<TResult> Await(Task task)
    {
        await task.ConfigureAwait(false);
        return default!;
    }

    private static Task<TResult> FromValueTask(ValueTask task) =>
        task.IsCompletedSuccessfully ? CompletedDefault : Await(task.AsTask());

    private static Task<TResult> FromValueTaskOfT(ValueTask<TResult> task) =>
        task.IsCompletedSuccessfully ? Task.FromResult(task.Result) : task.AsTask();
}
