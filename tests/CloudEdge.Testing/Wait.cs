namespace CloudEdge.Testing;

/// <summary>
/// Waits for a condition by polling, with a generous deadline: CI machines are loaded, and a test that
/// waits for a condition (never for a fixed time) stays correct however slow the machine is.
/// </summary>
public static class Wait
{
    /// <summary>The default deadline: long, because reaching it means the test failed anyway.</summary>
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Long);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {(timeout ?? Long).TotalSeconds:0} s waiting for: {what}");
            }

            await Task.Delay(PollInterval);
        }
    }
}
