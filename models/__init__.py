"""Python side of san-node: SAN in PyTorch, its checkpoint loader and the TorchScript exporter."""
