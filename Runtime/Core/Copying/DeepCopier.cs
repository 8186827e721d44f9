using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace CloudEdge.Runtime.Copying;

/// <summary>
/// Copies values crossing a grain boundary so that caller and callee never share mutable objects.
/// Immutable values (primitives, strings, [Immutable] types, grain references, types whose fields are
/// all read-only and immutable) pass through untouched; common collections are rebuilt through their
/// API; everything else is copied by an emitted per-type copier that fills an uninitialized instance
/// field by field, deep-copying each field that can hold mutable data.
/// </summary>
internal static class DeepCopier
{
    private const int MaxDepth = 512;

    [ThreadStatic]
    private static int depth;

    private static readonly ConcurrentDictionary<Type, Func<object, object>> ObjectCopiers = new();
    private static readonly ConcurrentDictionary<Type, bool> ImmutableTypes = new();

    /// <summary>Copies a value whose static type is <typeparamref name="T"/>.</summary>
    public static T Copy<T>(T value) => CopierCache<T>.Copy(value);

    /// <summary>Copies a value known only as object.</summary>
    public static object? CopyObject(object? value)
    {
        if (value is null)
        {
            return null;
        }

        var type = value.GetType();
        if (IsImmutable(type))
        {
            return value;
        }

        return ObjectCopiers.GetOrAdd(type, static t => CreateObjectCopier(t))(value);
    }

    /// <summary>True when values of this exact type need no copy.</summary>
    public static bool IsImmutable(Type type) => ImmutableTypes.TryGetValue(type, out var known) ? known : ImmutableTypes.GetOrAdd(type, ComputeImmutable(type, []));

    /// <summary>True when a declared parameter or return type never needs a copy, whatever runtime type it holds.</summary>
    public static bool IsImmutableDeclaredType(Type type) =>
        type.IsValueType || type.IsSealed || type.IsInterface && typeof(IAddressable).IsAssignableFrom(type)
            ? IsImmutable(type)
            : type == typeof(string) || type.IsDefined(typeof(ImmutableAttribute), inherit: false);

    /// <summary>A copier for boxed values of a declared type: exact and dictionary-free when the type is sealed.</summary>
    public static Func<object?, object?> CreateBoxedCopier(Type declaredType)
    {
        if (declaredType.IsValueType || declaredType.IsSealed)
        {
            var method = typeof(DeepCopier).GetMethod(nameof(BoxedCopyDeclared), BindingFlags.Static | BindingFlags.NonPublic)!.MakeGenericMethod(declaredType);
            return method.CreateDelegate<Func<object?, object?>>();
        }

        return CopyObject;
    }

    private static object? BoxedCopyDeclared<T>(object? value) => value is null ? null : CopierCache<T>.CopyExact((T)value);

    private static Func<object, object> CreateObjectCopier(Type type)
    {
        var method = typeof(DeepCopier).GetMethod(nameof(BoxedCopy), BindingFlags.Static | BindingFlags.NonPublic)!.MakeGenericMethod(type);
        return method.CreateDelegate<Func<object, object>>();
    }

    private static object BoxedCopy<T>(object value) => CopierCache<T>.CopyExact((T)value)!;

    internal static void Enter()
    {
        if (++depth > MaxDepth)
        {
            depth = 0;
            throw new InvalidOperationException(
                $"The object graph crossing the grain boundary is deeper than {MaxDepth} levels or cyclic; it cannot be copied. Mark the type [Immutable] or flatten it.");
        }
    }

    internal static void Exit() => depth--;

    private static bool ComputeImmutable(Type type, HashSet<Type> visiting)
    {
        if (type.IsPrimitive || type.IsEnum || type.IsPointer || type == typeof(string) || type == typeof(decimal) ||
            type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(TimeSpan) || type == typeof(Guid) ||
            type == typeof(DateOnly) || type == typeof(TimeOnly) || type == typeof(Int128) || type == typeof(UInt128) ||
            type == typeof(Half) || type == typeof(Uri) || type == typeof(Version) || type == typeof(GrainId) ||
            type == typeof(CancellationToken) || type == typeof(System.Text.Rune) ||
            typeof(Type).IsAssignableFrom(type) || typeof(MemberInfo).IsAssignableFrom(type) || typeof(Delegate).IsAssignableFrom(type) ||
            typeof(Task).IsAssignableFrom(type) || typeof(Exception).IsAssignableFrom(type) ||
            typeof(References.GrainReference).IsAssignableFrom(type))
        {
            return true;
        }

        if (type.IsDefined(typeof(ImmutableAttribute), inherit: false))
        {
            return true;
        }

        if (type.IsGenericType)
        {
            var definition = type.GetGenericTypeDefinition();
            if (definition == typeof(Immutable<>))
            {
                return true;
            }

            if (definition == typeof(Nullable<>))
            {
                return IsImmutable(type.GetGenericArguments()[0]);
            }

            if (type.Namespace == "System.Collections.Immutable" || type.Namespace == "System.Collections.Frozen")
            {
                return type.GetGenericArguments().All(IsImmutable);
            }
        }

        if (type.IsArray || type.IsInterface || type.IsAbstract || type == typeof(object))
        {
            return false;
        }

        // A class is immutable when every field (its own and inherited) is read-only and of an
        // immutable type; a struct when every field is of an immutable type (it is copied by value).
        if (!visiting.Add(type))
        {
            return false;
        }

        for (var current = type; current is not null && current != typeof(object) && current != typeof(ValueType); current = current.BaseType)
        {
            foreach (var field in current.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!type.IsValueType && !field.IsInitOnly)
                {
                    return false;
                }

                var fieldType = field.FieldType;
                if (fieldType == type)
                {
                    continue;
                }

                if (!fieldType.IsValueType && !fieldType.IsSealed && fieldType != typeof(string) &&
                    !(fieldType.IsInterface && typeof(IAddressable).IsAssignableFrom(fieldType)) &&
                    !fieldType.IsDefined(typeof(ImmutableAttribute), inherit: false) && !(fieldType.IsGenericType && fieldType.Namespace == "System.Collections.Immutable"))
                {
                    return false;
                }

                if (fieldType.IsInterface && typeof(IAddressable).IsAssignableFrom(fieldType))
                {
                    continue;
                }

                if (!(ImmutableTypes.TryGetValue(fieldType, out var known) ? known : ComputeImmutable(fieldType, visiting)))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Per-type copier, built once.</summary>
    private static class CopierCache<T>
    {
        private static readonly bool ExactImmutable = IsImmutable(typeof(T));
        private static readonly Func<T, T> Exact = BuildExact();

        public static T Copy(T value)
        {
            if (typeof(T).IsValueType)
            {
                return ExactImmutable ? value : Exact(value);
            }

            if (value is null)
            {
                return value;
            }

            if (value.GetType() == typeof(T))
            {
                return ExactImmutable ? value : Exact(value);
            }

            return (T)CopyObject(value)!;
        }

        public static T CopyExact(T value) => ExactImmutable ? value : Exact(value);

        private static Func<T, T> BuildExact()
        {
            var type = typeof(T);
            if (ExactImmutable || type.IsInterface || type.IsAbstract)
            {
                return static v => v;
            }

            if (type.IsArray)
            {
                if (type.GetArrayRank() != 1 || !type.IsSZArray)
                {
                    return static v => (T)((Array)(object)v!).Clone();
                }

                var element = type.GetElementType()!;
                var method = typeof(CopierCache<T>).GetMethod(nameof(CopyArray), BindingFlags.Static | BindingFlags.NonPublic)!.MakeGenericMethod(element);
                return method.CreateDelegate<Func<T, T>>();
            }

            if (type.IsGenericType)
            {
                // Common collections are rebuilt through their public API: their internals hold
                // back-references (a dictionary's cached Keys view points at the dictionary) that a
                // field-by-field copy would follow in circles.
                var definition = type.GetGenericTypeDefinition();
                var arguments = type.GetGenericArguments();
                var name = definition == typeof(List<>) ? nameof(CopyList)
                    : definition == typeof(Dictionary<,>) ? nameof(CopyDictionary)
                    : definition == typeof(HashSet<>) ? nameof(CopyHashSet)
                    : definition == typeof(Queue<>) ? nameof(CopyQueue)
                    : definition == typeof(LinkedList<>) ? nameof(CopyLinkedList)
                    : definition == typeof(SortedDictionary<,>) ? nameof(CopySortedDictionary)
                    : null;
                if (name is not null)
                {
                    var method = typeof(CopierCache<T>).GetMethod(name, BindingFlags.Static | BindingFlags.NonPublic)!.MakeGenericMethod(arguments);
                    return method.CreateDelegate<Func<T, T>>();
                }
            }

            return EmitFieldCopier(type);
        }

        private static T CopyList<TElement>(T value)
        {
            var source = (List<TElement>)(object)value!;
            var copy = new List<TElement>(source.Count);
            if (IsImmutableDeclaredType(typeof(TElement)))
            {
                copy.AddRange(source);
            }
            else
            {
                Enter();
                foreach (var item in source)
                {
                    copy.Add(CopierCache<TElement>.Copy(item));
                }

                Exit();
            }

            return (T)(object)copy;
        }

        private static T CopyDictionary<TKey, TValue>(T value)
            where TKey : notnull
        {
            var source = (Dictionary<TKey, TValue>)(object)value!;
            var copy = new Dictionary<TKey, TValue>(source.Count, source.Comparer);
            Enter();
            foreach (var (key, item) in source)
            {
                copy.Add(CopierCache<TKey>.Copy(key), CopierCache<TValue>.Copy(item));
            }

            Exit();
            return (T)(object)copy;
        }

        private static T CopySortedDictionary<TKey, TValue>(T value)
            where TKey : notnull
        {
            var source = (SortedDictionary<TKey, TValue>)(object)value!;
            var copy = new SortedDictionary<TKey, TValue>(source.Comparer);
            Enter();
            foreach (var (key, item) in source)
            {
                copy.Add(CopierCache<TKey>.Copy(key), CopierCache<TValue>.Copy(item));
            }

            Exit();
            return (T)(object)copy;
        }

        private static T CopyHashSet<TElement>(T value)
        {
            var source = (HashSet<TElement>)(object)value!;
            var copy = new HashSet<TElement>(source.Count, source.Comparer);
            Enter();
            foreach (var item in source)
            {
                copy.Add(CopierCache<TElement>.Copy(item));
            }

            Exit();
            return (T)(object)copy;
        }

        private static T CopyQueue<TElement>(T value)
        {
            var source = (Queue<TElement>)(object)value!;
            var copy = new Queue<TElement>(source.Count);
            Enter();
            foreach (var item in source)
            {
                copy.Enqueue(CopierCache<TElement>.Copy(item));
            }

            Exit();
            return (T)(object)copy;
        }

        private static T CopyLinkedList<TElement>(T value)
        {
            var source = (LinkedList<TElement>)(object)value!;
            var copy = new LinkedList<TElement>();
            Enter();
            foreach (var item in source)
            {
                copy.AddLast(CopierCache<TElement>.Copy(item));
            }

            Exit();
            return (T)(object)copy;
        }

        private static T CopyArray<TElement>(T value)
        {
            var source = (TElement[])(object)value!;
            var copy = (TElement[])source.Clone();
            if (!IsImmutableDeclaredType(typeof(TElement)))
            {
                Enter();
                try
                {
                    for (var i = 0; i < copy.Length; i++)
                    {
                        copy[i] = CopierCache<TElement>.Copy(copy[i]);
                    }
                }
                finally
                {
                    Exit();
                }
            }

            return (T)(object)copy;
        }

        private static Func<T, T> EmitFieldCopier(Type type)
        {
            var fields = new List<FieldInfo>();
            for (var current = type; current is not null && current != typeof(object) && current != typeof(ValueType); current = current.BaseType)
            {
                fields.AddRange(current.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly));
            }

            var deep = fields.Where(f => !IsImmutableDeclaredType(f.FieldType)).ToHashSet();
            var copyMethod = typeof(DeepCopier).GetMethod(nameof(Copy), BindingFlags.Static | BindingFlags.Public)!;
            var method = new DynamicMethod($"Copy_{type.Name}", type, [type], typeof(DeepCopier).Module, skipVisibility: true);
            var il = method.GetILGenerator();
            var clone = il.DeclareLocal(type);
            if (deep.Count > 0)
            {
                il.Emit(OpCodes.Call, typeof(DeepCopier).GetMethod(nameof(Enter), BindingFlags.Static | BindingFlags.NonPublic)!);
            }

            if (type.IsValueType)
            {
                // A struct is copied by value; only its fields holding mutable data are replaced.
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Stloc, clone);
                foreach (var field in deep)
                {
                    il.Emit(OpCodes.Ldloca, clone);
                    il.Emit(OpCodes.Ldloca, clone);
                    il.Emit(OpCodes.Ldfld, field);
                    il.Emit(OpCodes.Call, copyMethod.MakeGenericMethod(field.FieldType));
                    il.Emit(OpCodes.Stfld, field);
                }
            }
            else
            {
                // An uninitialized instance filled field by field: the semantics of MemberwiseClone
                // (no constructor runs) at a fraction of its cost.
                il.Emit(OpCodes.Ldtoken, type);
                il.Emit(OpCodes.Call, typeof(Type).GetMethod(nameof(Type.GetTypeFromHandle))!);
                il.Emit(OpCodes.Call, typeof(RuntimeHelpers).GetMethod(nameof(RuntimeHelpers.GetUninitializedObject))!);
                il.Emit(OpCodes.Castclass, type);
                il.Emit(OpCodes.Stloc, clone);
                foreach (var field in fields)
                {
                    il.Emit(OpCodes.Ldloc, clone);
                    il.Emit(OpCodes.Ldarg_0);
                    il.Emit(OpCodes.Ldfld, field);
                    if (deep.Contains(field))
                    {
                        il.Emit(OpCodes.Call, copyMethod.MakeGenericMethod(field.FieldType));
                    }

                    il.Emit(OpCodes.Stfld, field);
                }
            }

            if (deep.Count > 0)
            {
                il.Emit(OpCodes.Call, typeof(DeepCopier).GetMethod(nameof(Exit), BindingFlags.Static | BindingFlags.NonPublic)!);
            }

            il.Emit(OpCodes.Ldloc, clone);
            il.Emit(OpCodes.Ret);
            return method.CreateDelegate<Func<T, T>>();
        }
    }
}
