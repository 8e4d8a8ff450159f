"""``toolkit generate`` on 1,000 contracts (aim: under 2 s).

Builds a synthetic system of 50 services x 20 contracts (commands and events
with a mix of field types, plus subscriber views), then times the whole
pipeline (load + validate + render + parse) and the CLI end to end.

    python -m bench.generate [--services 50] [--per-service 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codegen.generate import generate_files


def write_system(root: Path, services: int, per_service: int) -> int:
    schemas = root / "schemas"
    schemas.mkdir(parents=True)
    contracts = 0
    for s in range(services):
        lines = [
            "[service]",
            f'name = "svc{s}"',
            'description = "Synthetic service for the generator benchmark."',
            "",
            f"[channels.svc{s}_commands]",
            'kind = "queue"',
            "commands = true",
            "",
            f"[channels.svc{s}_events]",
            'kind = "queue"',
            f'subscribe = ["svc{(s + 1) % services}.*"]',
            "",
            "[types.Level]",
            'kind = "enum"',
            'values = ["low", "mid", "high"]',
            "",
        ]
        for c in range(per_service):
            kind = "commands" if c % 2 == 0 else "events"
            lines += [
                f'[{kind}."svc{s}.msg{c}"]',
                f'class = "Msg{c}"',
                f'description = "Message {c} of service {s}."',
                'fields.id = "uuid"',
                'fields.name = "str"',
                'fields.count = { type = "int", default = 0 }',
                'fields.level = "Level"',
                'fields.tags = { type = "list[str]", default = [] }',
                'fields.at = "datetime"',
                'fields.price = "optional[decimal]"',
                "",
            ]
            contracts += 1
        upstream = (s + 1) % services
        for c in range(1, per_service, 2):
            lines += [
                f'[subscribes."svc{upstream}.msg{c}"]',
                f'class = "Seen{c}"',
                'fields.id = "uuid"',
                'fields.count = "float"',
                "",
            ]
        (schemas / f"svc{s}.toml").write_text("\n".join(lines))
    return contracts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--per-service", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        contracts = write_system(root, args.services, args.per_service)
        start = time.perf_counter()
        files = generate_files(root / "schemas")
        in_process = time.perf_counter() - start
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "toolkit", "generate"], cwd=root, capture_output=True, text=True
        )
        cli = time.perf_counter() - start
        assert result.returncode == 0, result.stderr
        start = time.perf_counter()
        check = subprocess.run(
            [sys.executable, "-m", "toolkit", "generate", "--check"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        check_time = time.perf_counter() - start
        assert check.returncode == 0, check.stderr
    print(
        f"toolkit generate: {contracts:,} contracts in {args.services} services -> {len(files)} files"
    )
    print(f"  load + validate + render + parse (in process): {in_process:6.2f} s")
    print(
        f"  `toolkit generate` CLI, writing files        : {cli:6.2f} s   (aim < 2 s: {'met' if cli < 2 else 'NOT met'})"
    )
    print(f"  `toolkit generate --check` CLI               : {check_time:6.2f} s")


if __name__ == "__main__":
    main()
