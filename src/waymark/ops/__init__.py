"""Operations: health, logging, caches and other cross-cutting concerns."""
