using System.Runtime.InteropServices;

namespace CloudEdge.Onnx.Native;

/// <summary>
/// Owns one ONNX Runtime object (OrtEnv, OrtSession, OrtValue, ...) and releases it with the matching
/// <c>Release*</c> entry of the API table. Handles it depends on (a session on its environment, say) are kept
/// alive until after this one is released, so release order follows ONNX Runtime's rules even when the
/// finalizer thread is the one releasing.
/// </summary>
internal sealed unsafe class OrtHandle : SafeHandle
{
    private readonly delegate* unmanaged<nint, void> _release;
    private SafeHandle[] _dependencies;

    public OrtHandle(delegate* unmanaged<nint, void> release, params SafeHandle[] dependencies)
        : base(0, ownsHandle: true)
    {
        _release = release;
        _dependencies = dependencies;
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>
    /// Keeps <paramref name="dependency"/> alive until this handle is released. Only while the owner is still
    /// building this handle, before it is shared.
    /// </summary>
    public void Hold(SafeHandle dependency)
    {
        var added = false;
        dependency.DangerousAddRef(ref added);
        _dependencies = [.. _dependencies, dependency];
    }

    /// <summary>
    /// Takes ownership of a freshly created native object and holds its dependencies. If a dependency was
    /// disposed meanwhile, the object is released at once and the <see cref="ObjectDisposedException"/> surfaces.
    /// </summary>
    public void Own(nint value)
    {
        var held = 0;
        try
        {
            foreach (var dependency in _dependencies)
            {
                var added = false;
                dependency.DangerousAddRef(ref added);
                held++;
            }
        }
        catch
        {
            for (var i = 0; i < held; i++) _dependencies[i].DangerousRelease();
            _release(value);
            throw;
        }
        SetHandle(value);
    }

    protected override bool ReleaseHandle()
    {
        _release(handle);
        foreach (var dependency in _dependencies) dependency.DangerousRelease();
        return true;
    }
}

/// <summary>A block of native memory (names, pointer tables) that native calls read.</summary>
internal sealed unsafe class NativeBuffer : SafeHandle
{
    public NativeBuffer(nuint bytes) : base(0, ownsHandle: true)
    {
        SetHandle((nint)NativeMemory.AllocZeroed(bytes));
    }

    public override bool IsInvalid => handle == 0;

    public byte* Pointer => (byte*)handle;

    protected override bool ReleaseHandle()
    {
        NativeMemory.Free((void*)handle);
        return true;
    }
}

/// <summary>Memory ONNX Runtime allocated for us with an <c>OrtAllocator</c> (input and output names).</summary>
internal sealed unsafe class OrtAllocation : SafeHandle
{
    private readonly OrtApi _api;
    private readonly nint _allocator;

    public OrtAllocation(OrtApi api, nint allocator) : base(0, ownsHandle: true)
    {
        _api = api;
        _allocator = allocator;
    }

    public override bool IsInvalid => handle == 0;

    public byte* Pointer => (byte*)handle;

    public void Own(void* memory) => SetHandle((nint)memory);

    protected override bool ReleaseHandle()
    {
        var status = _api.AllocatorFree(_allocator, (void*)handle);
        if (status != 0) _api.ReleaseStatus(status);
        return status == 0;
    }
}
