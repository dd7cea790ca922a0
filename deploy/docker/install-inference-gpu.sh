#!/bin/sh
# The GPU inference image's contents: `ghaf serve` with PyTorch (CUDA) and ONNX Runtime's
# CUDA build, into the venv VENV.
# Usage: install-inference-gpu.sh VENV | --print-requirements  (see install-common.sh)
REQUIREMENTS="ghaf[serve,torch,postgres,s3,redis,nats] onnxruntime-gpu onnx model-signing
pyOpenSSL"
FORBIDDEN="ray scikit-learn lightgbm xgboost xgboost-cpu optuna river fairlearn skl2onnx
fastapi opentelemetry-sdk deltalake pyiceberg jinja2 onnxruntime"
. "$(dirname "$0")/install-common.sh"
