"""Operating over months: read-only (maintenance) mode and the routine maintenance jobs."""
