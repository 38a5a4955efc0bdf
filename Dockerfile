# syntax=docker/dockerfile:1
# The GPU image: ocrguard on the official vLLM image (CUDA, PyTorch and vLLM already in it).
#
#   docker build -t ocrguard:gpu .
#   docker run --gpus all --ipc=host -p 8000:8000 \
#     -e OCRGUARD_REDIS_URL=redis://redis.internal:6379/0 \
#     -v ocrguard-hf:/home/ocrguard/.cache/huggingface ocrguard:gpu
#
# Configuration is by environment only (OCRGUARD_*, every knob is in app/config.py). The
# defaults below serve DharmaOCR Lite (Dharma-AI/Dharma-OCR-LITE, a Qwen2.5-VL 3B
# fine-tune) on one GPU; docs/deploy.md explains them and how to serve other models.

# Pinned: each vLLM release pins its own torch, and the vLLM engine needs vLLM >= 0.17.
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0
FROM ${VLLM_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1

WORKDIR /opt/ocrguard
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training

# `pip install .[vllm]` as such cannot resolve here: pyproject pins torch to the CPU build the
# developers' machines use, while the image's vLLM pins the torch it was built with. So the
# image's torch, torchvision, transformers and vLLM (the `vllm` extra) are held as they are,
# ocrguard's other dependencies are installed under that constraint, then ocrguard itself, its
# guard compiled first (app/guard_build.py: package data once built; mypy is for the build only).
RUN python3 -c "import re, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
reqs = p['dependencies'] + p['optional-dependencies']['vllm']; \
print('\n'.join(r for r in reqs if re.split(r'[ <>=!~;\[]', r, maxsplit=1)[0] not in ('torch', 'torchvision')))" \
      > /tmp/requirements.txt \
 && python3 -c "from importlib.metadata import version as v; \
print('\n'.join(f'{p}=={v(p)}' for p in ('torch', 'torchvision', 'transformers', 'vllm')))" \
      > /tmp/constraints.txt \
 && python3 -m pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt \
 && python3 -m pip install --no-cache-dir "mypy==2.4.1" \
 && (python3 -m app.guard_build --force || echo "the guard runs interpreted: it was not compiled") \
 && python3 -m pip uninstall --yes mypy \
 && python3 -m pip install --no-cache-dir --no-deps . \
 && python3 -c "import app.engines.vllm, vllm; print('ocrguard on vLLM', vllm.__version__)" \
 && rm /tmp/requirements.txt /tmp/constraints.txt

# Non-root. vLLM, Triton and the HF hub write caches under $HOME: mount a volume on
# /home/ocrguard/.cache/huggingface so weights survive restarts.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ocrguard
USER 10001
ENV HOME=/home/ocrguard \
    HF_HOME=/home/ocrguard/.cache/huggingface

# DharmaOCR Lite on one GPU. Pixel budget 1280*28*28 = 1003520 (at most 1280 visual tokens
# per page), so 8192 tokens of context hold the image, the prompt and 4096 output tokens.
ENV OCRGUARD_ENGINE=vllm \
    OCRGUARD_MODEL=Dharma-AI/Dharma-OCR-LITE \
    OCRGUARD_VLLM_MAX_MODEL_LEN=8192 \
    OCRGUARD_MODEL_MAX_PIXELS=1003520 \
    OCRGUARD_VLLM_GPU_MEMORY_UTILIZATION=0.85 \
    OCRGUARD_MAX_TOKENS=4096 \
    OCRGUARD_MAX_CONCURRENCY=16 \
    OCRGUARD_MAX_QUEUE=64

EXPOSE 8000
# /readyz answers 200 when ready or degraded (Redis down: OCR still works), 503 while the
# model is missing or the server drains. Probing it also keeps ocrguard_ready current.
# The long start period covers the first download of the weights and vLLM's warm-up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15m --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

ENTRYPOINT ["ocrguard", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD []
