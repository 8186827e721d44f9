using CloudEdge.Runtime.Persistence;
using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Tests;

public sealed class PersistenceTests
{
    public sealed class StateV1
    {
        public int Value { get; set; }

        public string Name { get; set; } = "";
    }

    public sealed class StateV2
    {
        public int Value { get; set; }

        public string Name { get; set; } = "";

        public List<string> Tags { get; set; } = ["new-default"];
    }

    private static async Task EtagConflict(IGrainStorage storage)
    {
        var id = GrainId.Create("counter", Guid.NewGuid().ToString("N"));
        var first = new PersistentState<CounterState>("counter", id, storage);
        var second = new PersistentState<CounterState>("counter", id, storage);
        await first.ReadStateAsync();
        await second.ReadStateAsync();
        first.State.Value = 1;
        await first.WriteStateAsync();
        second.State.Value = 2;
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => second.WriteStateAsync());
        Assert.Equal(first.Etag, error.StoredEtag);

        // Having re-read, the second writer succeeds; the first is now stale.
        await second.ReadStateAsync();
        Assert.Equal(1, second.State.Value);
        second.State.Value = 3;
        await second.WriteStateAsync();
        await Assert.ThrowsAsync<InconsistentStateException>(() => first.WriteStateAsync());
        await Assert.ThrowsAsync<InconsistentStateException>(() => first.ClearStateAsync());
        await second.ClearStateAsync();
        await first.ReadStateAsync();
        Assert.False(first.RecordExists);
        Assert.Equal(0, first.State.Value);
    }

    [Fact]
    public async Task Stale_etag_throws_InconsistentStateException_in_memory()
    {
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        await EtagConflict(silo.Services.GetRequiredKeyedService<IGrainStorage>(IGrainStorage.DefaultName));
    }

    [Fact]
    public async Task Stale_etag_throws_InconsistentStateException_in_sqlite()
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(s => s.AddSqliteGrainStorage(configure: o => o.DataDirectory = directory.Path));
        await EtagConflict(silo.Services.GetRequiredKeyedService<IGrainStorage>(IGrainStorage.DefaultName));
        Assert.True(File.Exists(Path.Combine(directory.Path, "grains.db")));
    }

    [Fact]
    public async Task State_and_stored_references_survive_a_silo_restart_in_sqlite()
    {
        using var directory = new TempDirectory();
        var key = Guid.NewGuid().ToString("N");
        var bookKey = Random.Shared.NextInt64();
        void Configure(ISiloBuilder s) => s.AddSqliteGrainStorage(configure: o => o.DataDirectory = directory.Path);

        await using (var first = await TestSilo.StartAsync(Configure))
        {
            var counter = first.Grains.GetGrain<ICounterGrain>(key);
            await counter.Add(7);
            await first.Grains.GetGrain<IAddressBookGrain>(bookKey).Remember(counter);
        }

        await using var second = await TestSilo.StartAsync(Configure);
        Assert.Equal(7, await second.Grains.GetGrain<ICounterGrain>(key).Get());
        var book = second.Grains.GetGrain<IAddressBookGrain>(bookKey);
        Assert.Equal($"counter/{key}", await book.RememberedId());
        Assert.Equal(10, await book.AddThroughRemembered(3));
    }

    [Fact]
    public async Task Adding_or_removing_a_field_does_not_break_stored_state()
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(s => s.AddSqliteGrainStorage(configure: o => o.DataDirectory = directory.Path));
        var storage = silo.Services.GetRequiredKeyedService<IGrainStorage>(IGrainStorage.DefaultName);
        var id = GrainId.Create("versioned", "1");

        var v1 = new PersistentState<StateV1>("s", id, storage);
        v1.State = new StateV1 { Value = 41, Name = "old" };
        await v1.WriteStateAsync();

        var v2 = new PersistentState<StateV2>("s", id, storage);
        await v2.ReadStateAsync();
        Assert.Equal(41, v2.State.Value);
        Assert.Equal("old", v2.State.Name);
        Assert.Equal(["new-default"], v2.State.Tags);
        v2.State.Tags = ["a", "b"];
        v2.State.Value = 42;
        await v2.WriteStateAsync();

        // An older reader ignores the field it does not know.
        var older = new PersistentState<StateV1>("s", id, storage);
        await older.ReadStateAsync();
        Assert.Equal(42, older.State.Value);
    }

    [Fact]
    public async Task Missing_storage_fails_activation_with_a_clear_error()
    {
        await using var silo = await TestSilo.StartAsync();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => silo.Grains.GetGrain<ICounterGrain>("no-storage").Get());
        Assert.Contains("grain storage 'Default'", error.Message, StringComparison.Ordinal);
    }
}
