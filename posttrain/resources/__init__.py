"""Dagster resources: thin, typed configuration around the platform's engine objects."""

from posttrain.resources.ray import RayResource
from posttrain.resources.tokenizer import TokenizerResource
from posttrain.resources.warehouse import WarehouseResource
from posttrain.resources.workspace import WorkspaceReaderResource

__all__ = ["RayResource", "TokenizerResource", "WarehouseResource", "WorkspaceReaderResource"]
