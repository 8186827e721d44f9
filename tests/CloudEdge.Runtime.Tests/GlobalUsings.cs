global using CloudEdge.Runtime.Hosting;
global using CloudEdge.Testing;
