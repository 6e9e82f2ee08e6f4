"""Model files: install, list, and the errors a missing or corrupt file gives."""

import pytest

from npcs.inference import models
from npcs.inference.models import DEFAULT_MODEL, ModelError, check_model

from conftest import run_cli


def test_default_model_is_installed_and_checks():
    assert check_model(models.default_model_path()) == DEFAULT_MODEL.sha256


def test_missing_model_names_path_and_hash(tmp_path):
    path = tmp_path / DEFAULT_MODEL.filename
    with pytest.raises(ModelError) as exc:
        check_model(path)
    assert str(path) in str(exc.value) and DEFAULT_MODEL.sha256 in str(exc.value)
    assert "llama-land models install" in str(exc.value)


def test_corrupt_model_names_path_and_hash(tmp_path):
    path = tmp_path / DEFAULT_MODEL.filename
    with open(models.default_model_path(), "rb") as src:
        path.write_bytes(src.read(1 << 20))  # a truncated copy: right header, wrong content
    with pytest.raises(ModelError, match="corrupt") as exc:
        check_model(path)
    assert DEFAULT_MODEL.sha256 in str(exc.value) and str(path) in str(exc.value)


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelError, match="not a GGUF file"):
        check_model(path)


def test_install_into_an_empty_cache_then_list(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_LAND_CACHE", str(tmp_path))
    result = run_cli("models", "install", "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    assert DEFAULT_MODEL.sha256 in result.stdout
    path = tmp_path / "models" / DEFAULT_MODEL.filename
    assert check_model(path) == DEFAULT_MODEL.sha256
    again = run_cli("models", "install", "--quiet")  # idempotent and quick: nothing fetched
    assert again.returncode == 0 and "fetching" not in again.stderr
    listed = run_cli("models", "list")
    assert DEFAULT_MODEL.name in listed.stdout and DEFAULT_MODEL.sha256 in listed.stdout
