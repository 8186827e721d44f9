Console.WriteLine("CloudEdge edge agent: not yet composed");
