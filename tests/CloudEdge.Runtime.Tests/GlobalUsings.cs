global using CloudEdge.Runtime.Hosting;
