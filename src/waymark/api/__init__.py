"""The HTTP routes, above the packages they adapt: the maps API (maps, layers, features,
imports, exports) and the raw ASGI fast path for published reads, over the domain in maps/,
which knows nothing of HTTP; the account, admin, basemap and geocoding routes, so that
accounts/, basemaps/ and geocode/ hold no routes and close no import cycle."""
