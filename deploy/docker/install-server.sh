#!/bin/sh
# The control-plane image's contents: `ghaf server` and `ghaf init`, into the venv VENV.
# Usage: install-server.sh VENV | --print-requirements  (see install-common.sh)
# The server registers, signs and checks models (the ml extra: skops, ONNX, signing) and
# runs pipelines it is configured for; PyTorch and Ray stay out (workers bring their own).
REQUIREMENTS="ghaf[server,ml,postgres,s3,redis,nats,data]"
FORBIDDEN="torch ray"
. "$(dirname "$0")/install-common.sh"
