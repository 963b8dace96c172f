"""What changed between two lock files: `python3 tools/lock_diff.py OLD NEW`.

Reads uv.lock (TOML, [[package]] name/version) or package-lock.json (lockfileVersion 2/3,
"packages" by node_modules path) and prints one line per added, removed or changed package.
Standard library only, so it runs before any environment exists (`make upgrade`).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path


def versions(text: str, name: str) -> dict[str, str]:
    if name.endswith(".json"):
        packages = json.loads(text).get("packages", {})
        return {path.split("node_modules/")[-1]: info.get("version", "")
                for path, info in packages.items() if path}
    return {p["name"]: p.get("version", "") for p in tomllib.loads(text).get("package", [])}


def changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"  + {name} {after}")
        elif after is None:
            lines.append(f"  - {name} {before}")
        else:
            lines.append(f"  ~ {name} {before} -> {after}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    old, new = Path(argv[1]), Path(argv[2])
    lines = changes(versions(old.read_text(), new.name), versions(new.read_text(), new.name))
    print(f"{new.name}: {len(lines)} change(s)")
    print("\n".join(lines) if lines else "  (nothing changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
