"""Prompts are versioned files in prompts/: front matter (name, version) + '## system' and '## user' parts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt; `version` is "<name>@<declared version>+<content hash>" so any edit shows."""

    name: str
    version: str
    system: str
    user: str


def load_prompt(name: str, prompt_dir: Path) -> Prompt:
    """Read prompts/<name>.md. Raises ConfigError naming the file and what is wrong with it."""
    path = Path(prompt_dir) / f"{name}.md"
    if not path.is_file():
        raise ConfigError(f"Prompt file {path} not found: OMBUDS_PROMPT_DIR must hold {name}.md")
    raw = path.read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", raw, re.S)
    if not m:
        raise ConfigError(f"Prompt file {path} must start with front matter (--- name/version ---)")
    meta = dict(
        (k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in m.group(1).splitlines() if ":" in line)
    )
    if "version" not in meta:
        raise ConfigError(f"Prompt file {path} has no 'version:' in its front matter")
    parts = re.split(r"^## (system|user)\s*$", m.group(2), flags=re.M)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if "system" not in sections or "user" not in sections:
        raise ConfigError(f"Prompt file {path} needs a '## system' and a '## user' section")
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return Prompt(name=meta.get("name", name), version=f"{meta.get('name', name)}@{meta['version']}+{digest}",
                  system=sections["system"], user=sections["user"])
