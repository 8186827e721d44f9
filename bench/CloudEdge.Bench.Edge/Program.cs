Console.WriteLine("CloudEdge edge benchmarks: see docs/benchmarks.md");
