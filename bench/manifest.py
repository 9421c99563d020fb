"""Compare core/hub_manifest.json (the curated repos' recorded file listings) with the Hub's own, or refresh it.

    python bench/manifest.py            # what differs per repo: files added, gone or resized, a new revision
    python bench/manifest.py --write    # rewrite every listing from the Hub: its revision and all files, sized

Needs the Hugging Face Hub (HF_TOKEN for gated repos); exits 2 where it cannot be reached, 1 when something differs.
The offline tests (tests/test_manifest.py) check the studio's download choices against whatever this file holds.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def live_listing(repo: str) -> tuple[str, dict[str, int | None]]:
    """(the revision of main, every file of it with its size), from the Hub."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo, files_metadata=True)
    return info.sha, {s.rfilename: s.size for s in sorted(info.siblings or [], key=lambda s: s.rfilename)}


def differences(recorded: dict, revision: str, live: dict) -> list[str]:
    said = [] if recorded.get("revision") == revision else [f"revision {recorded.get('revision')} -> {revision}"]
    files = recorded["files"]
    said += [f"gone: {f}" for f in files if f not in live]
    said += [f"resized: {f} {files[f]} -> {live[f]}" for f in files if f in live and files[f] not in (None, live[f])]
    if recorded.get("complete"):
        said += [f"new: {f}" for f in live if f not in files]
    return said


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the manifest from the Hub's listings")
    args = parser.parse_args()
    from core import hub

    if not hub.hub_reachable(timeout=5):
        print(f"The Hugging Face Hub ({hub.hub_endpoint()}) cannot be reached from here.", file=sys.stderr)
        return 2
    data = json.loads(hub.MANIFEST.read_text())
    changed = 0
    for repo in [r for r in data if not r.startswith("_")]:
        revision, live = live_listing(repo)
        found = differences(data[repo], revision, live)
        changed += bool(found)
        print(f"{repo}: " + ("; ".join(found) if found else "as recorded"))
        if args.write:
            data[repo].update(revision=revision, complete=True, files=live)
    if args.write:
        hub.MANIFEST.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {hub.MANIFEST}")
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
