using System.Globalization;
using CloudEdge.Grains;
using CloudEdge.Silo.Api;

namespace CloudEdge.Silo.Edge;

/// <summary>
/// Applies one uplink request of a gateway: checks each item, sends each device's items in batch
/// order to its device grain (devices in parallel: order only matters within a device), then
/// records the request and its drop reports on the gateway grain. Results keep batch order.
/// </summary>
internal static partial class UplinkBatch
{
    public static async Task<UplinkItemResult[]> ApplyAsync(string gatewayId, IReadOnlyList<UplinkReader.RawItem> raw, IGrainFactory grains, TimeProvider time, ILogger logger)
    {
        var outcomes = new UplinkOutcome?[raw.Count];
        var byDevice = new Dictionary<string, List<(int Index, DeviceUplinkItem Item)>>(StringComparer.Ordinal);
        var drops = new List<(int Index, GatewayDrops Drops)>();
        for (var i = 0; i < raw.Count; i++)
        {
            var (item, id) = raw[i];
            if (item is null)
            {
                outcomes[i] = UplinkOutcome.Rejected(id ?? string.Empty, "invalid_item");
                continue;
            }

            switch (Classify(gatewayId, item))
            {
                case (_, _, { } refused):
                    outcomes[i] = refused;
                    break;
                case ({ } device, _, _):
                    if (!byDevice.TryGetValue(item.DeviceId!, out var list))
                    {
                        byDevice[item.DeviceId!] = list = [];
                    }

                    list.Add((i, device));
                    break;
                case (_, { } dropped, _):
                    drops.Add((i, dropped));
                    break;
            }
        }

        var accepting = new bool[byDevice.Count];
        var calls = byDevice.Select(async (pair, d) =>
        {
            List<DeviceUplinkItem> items = [.. pair.Value.Select(v => v.Item)];
            var spans = UplinkTracing.StartItems(gatewayId, pair.Key, items);
            IReadOnlyList<UplinkOutcome> results;
            try
            {
                results = await grains.GetGrain<IDeviceGrain>(pair.Key).ApplyUplink(items);
            }
            catch (Exception e)
            {
                UplinkTracing.FailItems(spans, e);
                throw;
            }

            UplinkTracing.StopItems(spans, results);
            for (var j = 0; j < pair.Value.Count; j++)
            {
                outcomes[pair.Value[j].Index] = results[j];
                accepting[d] |= results[j].Status != UplinkStatus.Rejected;
            }
        });
        await Task.WhenAll(calls);
        var devices = byDevice.Keys.Where((_, d) => accepting[d]).ToList();

        long applied = 0, duplicates = 0, rejected = 0;
        foreach (var outcome in outcomes)
        {
            switch (outcome?.Status)
            {
                case UplinkStatus.Applied: applied++; break;
                case UplinkStatus.Duplicate: duplicates++; break;
                case UplinkStatus.Rejected: rejected++; break;
            }
        }

        var dropOutcomes = await grains.GetGrain<IGatewayGrain>(gatewayId)
            .RecordUplink(new GatewayUplink(time.GetUtcNow(), applied, duplicates, rejected, devices, [.. drops.Select(d => d.Drops)]));
        for (var j = 0; j < drops.Count; j++)
        {
            outcomes[drops[j].Index] = dropOutcomes[j];
        }

        if (outcomes.FirstOrDefault(o => o!.Status == UplinkStatus.Rejected) is { } firstRejected)
        {
            LogRejected(logger, gatewayId, raw.Count, outcomes.Count(o => o!.Status == UplinkStatus.Rejected), firstRejected.ItemId, firstRejected.Code);
        }

        return [.. outcomes.Select(o => new UplinkItemResult(o!.ItemId, EdgeText.Status(o.Status), o.Code))];
    }

    // Rejections are permanent for the agent (dead-lettered), so they are worth a line in the silo's log.
    [LoggerMessage(Level = LogLevel.Information, Message = "Uplink of gateway {GatewayId}: {Rejected} of {Items} items rejected; first {ItemId}: {Code}")]
    private static partial void LogRejected(ILogger logger, string gatewayId, int items, int rejected, string itemId, string? code);

    /// <summary>A device item, a drop report, or the reason the item is rejected before any grain sees it.</summary>
    private static (DeviceUplinkItem? Device, GatewayDrops? Drops, UplinkOutcome? Rejected) Classify(string gatewayId, UplinkItemRequest item)
    {
        var id = item.Id ?? string.Empty;
        if (!Identifiers.IsValidRequestId(item.Id))
        {
            return Reject(id, "invalid_item_id");
        }

        if (item.Seq is not (>= 1 and var seq))
        {
            return Reject(id, "invalid_seq");
        }

        var text = seq.ToString(CultureInfo.InvariantCulture);
        if (item.Traceparent is not null && !TraceContext.IsValid(item.Traceparent))
        {
            return Reject(id, "invalid_traceparent");
        }

        switch (item.Type)
        {
            case "drops":
                if (id != $"{gatewayId}:drops:{text}")
                {
                    return Reject(id, "invalid_item_id");
                }

                return item.Drops is { } d
                    ? (null, new GatewayDrops(id, seq, d.Summaries ?? 0, d.Alerts ?? 0, d.Readings ?? 0, d.Reason), null)
                    : Reject(id, "invalid_drops");

            case "summary" or "alert":
                if (!Identifiers.IsValidId(item.DeviceId))
                {
                    return Reject(id, "invalid_device_id");
                }

                if (id != $"{gatewayId}:{item.DeviceId}:{text}")
                {
                    return Reject(id, "invalid_item_id");
                }

                if (item.Type == "summary")
                {
                    return item.Summary is { WindowStart: { } start, WindowEnd: { } end, Kind: { } kind, Count: { } count, Min: { } min, Max: { } max, Mean: { } mean, Stddev: { } stddev } s
                        ? (new DeviceUplinkItem(new DeviceSummary(id, gatewayId, seq, start, end, kind, count, min, max, mean, stddev,
                            s.MaxScore ?? 0, s.AnomalyCount ?? 0, s.ModelVersion, item.Traceparent, s.Links), null), null, null)
                        : Reject(id, "invalid_summary");
                }

                return item.Alert is { At: { } at, Kind: { } alertKind, Value: { } value, Score: { } score, Threshold: { } threshold } a
                    ? (new DeviceUplinkItem(null, new DeviceAlert(id, gatewayId, seq, at, alertKind, value, score, threshold, a.ModelVersion, a.ReadingSeq, item.Traceparent)), null, null)
                    : Reject(id, "invalid_alert");

            default:
                return Reject(id, "unknown_type");
        }
    }

    private static (DeviceUplinkItem?, GatewayDrops?, UplinkOutcome?) Reject(string id, string code) => (null, null, UplinkOutcome.Rejected(id, code));
}
