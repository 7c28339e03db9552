"""Software-defined assets, one module per layer. Each asset is one Iceberg table."""
