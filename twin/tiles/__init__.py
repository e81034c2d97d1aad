"""Vector tiles of the twin: a fast Mapbox Vector Tile encoder over shapely geometries in Web Mercator."""

from twin.tiles.encoder import EncodedTile, LayerStats, TileLayer, encode_tile, encode_tile_with_stats, tile_bounds

__all__ = ["EncodedTile", "LayerStats", "TileLayer", "encode_tile", "encode_tile_with_stats", "tile_bounds"]
