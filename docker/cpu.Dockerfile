# syntax=docker/dockerfile:1
# The CPU image: the transformers engine serving the embedded model (models/ocrguard-tiny),
# so the whole compose stack runs on a laptop. Built from the repository root:
#
#   docker build -f docker/cpu.Dockerfile -t ocrguard:cpu .
#   docker run -p 8000:8000 -e OCRGUARD_REDIS_URL=redis://host.docker.internal:6379/0 ocrguard:cpu
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU wheels of the torch pair pyproject.toml pins (PyPI's default build is the CUDA one,
# several GB). `pip install .` then finds torch==2.14.1 satisfied by 2.14.1+cpu.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
      torch==2.14.1 torchvision==0.29.1

WORKDIR /opt/ocrguard
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN pip install --no-cache-dir . \
 && python -c "import torch, app.main; print('ocrguard on torch', torch.__version__)"
COPY models ./models

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ocrguard
USER 10001
ENV HOME=/home/ocrguard \
    HF_HOME=/home/ocrguard/.cache/huggingface \
    HF_HUB_OFFLINE=1

# The installed package cannot find the repository's models/ from site-packages, so the
# embedded model's path is given explicitly. Two threads: a laptop shares its cores.
ENV OCRGUARD_ENGINE=transformers \
    OCRGUARD_DEVICE=cpu \
    OCRGUARD_MODEL=/opt/ocrguard/models/ocrguard-tiny \
    OCRGUARD_TORCH_THREADS=2

EXPOSE 8000
# 200 when ready or degraded (Redis down), 503 while the model is missing or on drain.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

ENTRYPOINT ["ocrguard", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD []
