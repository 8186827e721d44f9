using System.Globalization;
using System.Text;

namespace CloudEdge.Grains;

/// <summary>The order lifecycle and what a well-formed order line is.</summary>
public static class OrderRules
{
    public const int MaxLines = 100;

    public const int MaxQuantity = 1_000_000;

    public const decimal MaxUnitPrice = 1_000_000_000m;

    public const int MaxSkuLength = 64;

    public const int MaxReasonLength = 500;

    /// <summary>True when the lifecycle allows going from <paramref name="from"/> to <paramref name="to"/>.</summary>
    public static bool CanTransition(OrderStatus from, OrderStatus to) => (from, to) switch
    {
        (OrderStatus.Created, OrderStatus.Paid) => true,
        (OrderStatus.Created, OrderStatus.Cancelled) => true,
        (OrderStatus.Paid, OrderStatus.Shipped) => true,
        (OrderStatus.Paid, OrderStatus.Cancelled) => true,
        (OrderStatus.Shipped, OrderStatus.Delivered) => true,
        _ => false,
    };

    /// <summary>Validates the lines and returns them with trimmed SKUs and the order total.</summary>
    public static (List<OrderLine> Lines, decimal Total) NormalizeLines(IReadOnlyList<OrderLine>? lines)
    {
        if (lines is null || lines.Count == 0)
        {
            throw new InvalidInputException("no_lines", "lines", "An order needs at least one line.");
        }

        if (lines.Count > MaxLines)
        {
            throw new InvalidInputException("too_many_lines", "lines", $"An order has at most {MaxLines} lines.");
        }

        var normalized = new List<OrderLine>(lines.Count);
        var total = 0m;
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i] ?? throw new InvalidInputException("invalid_line", $"lines[{i}]", $"Line {i} is missing.");
            var sku = line.Sku?.Trim() ?? string.Empty;
            if (sku.Length is 0 or > MaxSkuLength || sku.Any(char.IsControl))
            {
                throw new InvalidInputException("invalid_sku", $"lines[{i}].sku", $"Line {i}: 'sku' must be 1-{MaxSkuLength} characters.");
            }

            if (line.Quantity is <= 0 or > MaxQuantity)
            {
                throw new InvalidInputException("invalid_quantity", $"lines[{i}].quantity", $"Line {i}: 'quantity' must be between 1 and {MaxQuantity}.");
            }

            if (line.UnitPrice < 0 || line.UnitPrice > MaxUnitPrice)
            {
                throw new InvalidInputException("invalid_unit_price", $"lines[{i}].unitPrice", $"Line {i}: 'unitPrice' must be between 0 and {MaxUnitPrice.ToString(CultureInfo.InvariantCulture)}.");
            }

            normalized.Add(new OrderLine(sku, line.Quantity, line.UnitPrice));
            total += line.Quantity * line.UnitPrice;
        }

        return (normalized, total);
    }

    internal static string Fingerprint(string userId, IReadOnlyList<OrderLine> lines)
    {
        var text = new StringBuilder("create\n").Append(userId);
        foreach (var line in lines)
        {
            text.Append('\n').Append(line.Sku).Append('\t')
                .Append(line.Quantity.ToString(CultureInfo.InvariantCulture)).Append('\t')
                .Append(line.UnitPrice.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }
}
