"""Data safety: continuous SQLite replication (Litestream), point-in-time restore, object
and configuration backups. One concept per module, as in Litestream itself:

- ``urls``        backup target URL layout (db/, objects/, config/, archive/)
- ``litestream``  config generation from Settings, the binary, serve supervision
- ``status``      `waymark backup status`
- ``restore``     `waymark restore` and the boot-time restore
- ``objects``     incremental object backup and restore
- ``config``      `waymark backup config`
"""
