"""Data safety: continuous SQLite replication (Litestream) or PostgreSQL WAL archiving
(pgBackRest), point-in-time restore, object and configuration backups. One concept per
module, as in Litestream itself:

- ``urls``        backup target URL layout (db/, pg/, objects/, config/, archive/)
- ``litestream``  config generation from Settings, the binary, serve supervision
- ``status``      `waymark backup status`
- ``restore``     `waymark restore` and the boot-time restore
- ``objects``     incremental object backup and restore
- ``config``      `waymark backup config`

PostgreSQL (pgBackRest instead of Litestream; the same commands):

- ``pgbackrest``  config generation from Settings, running it as the data directory's owner
- ``pg_backup``   `waymark backup pg-setup`, base backups (the daily job), pushing WAL
- ``pg_status``   `waymark backup status` and the lag/backup-age metrics
- ``pg_restore``  `waymark restore` into a data directory, with a checked private recovery
"""
