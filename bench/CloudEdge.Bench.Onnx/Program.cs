Console.WriteLine("not yet built");
