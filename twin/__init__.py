"""The spatial core of the Shenzhen North Station (深圳北站) digital twin.

>>> import twin
>>> t = twin.open()          # the sample twin; or twin.open("path/to.gpkg")
>>> t.layer("grids", where={"level": "community"}).crs.to_epsg()
4326
>>> t.close()
"""

from twin.core import Twin, open

__all__ = ["Twin", "open"]
