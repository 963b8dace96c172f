"""Place search: `GET /api/v1/geocode?q=` through one provider interface (an offline
gazetteer built with the basemap, or a Nominatim/Photon service by URL)."""
