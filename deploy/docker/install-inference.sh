#!/bin/sh
# The CPU inference image's contents: `ghaf serve` with ONNX Runtime, into the venv VENV.
# Usage: install-inference.sh VENV | --print-requirements  (see install-common.sh)
# Backends a cluster serves from: PostgreSQL metadata, S3 artifacts, Redis online
# features, NATS events. No training stack, no control plane.
REQUIREMENTS="ghaf[serve,postgres,s3,redis,nats] onnxruntime onnx model-signing pyOpenSSL"
FORBIDDEN="torch ray scikit-learn lightgbm xgboost xgboost-cpu optuna river fairlearn
skl2onnx skops fastapi opentelemetry-sdk deltalake pyiceberg jinja2 mlflow"
. "$(dirname "$0")/install-common.sh"
