namespace CloudEdge.Simulator;

/// <summary>
/// Where the simulator's device password comes from: a file (<c>--password-file</c>) or the
/// <see cref="EnvironmentVariable"/> environment variable, never the command line, which every user of
/// the machine can read. The value is a pattern: <c>{deviceId}</c> is replaced per device.
/// </summary>
internal static class DevicePassword
{
    public const string EnvironmentVariable = "CLOUDEDGE_DEVICE_PASSWORD";

    /// <summary>The file's first line when a file is named (a missing or empty file is an error), else the environment's value, else none.</summary>
    public static string? Read(string? file, string? environmentValue)
    {
        if (file is not null)
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"The password file '{file}' does not exist.", file);
            }

            using var reader = new StreamReader(file);
            var first = reader.ReadLine();
            return string.IsNullOrEmpty(first)
                ? throw new InvalidDataException($"The password file '{file}' is empty: its first line is the password.")
                : first;
        }

        return string.IsNullOrEmpty(environmentValue) ? null : environmentValue;
    }
}
