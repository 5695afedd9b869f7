#!/usr/bin/env bash
# Build the churnops image, push it to Artifact Registry and deploy it to Cloud Run.
#
#   deploy/cloudrun/deploy.sh --project my-project [--region europe-west1] [--repository churnops]
#       [--service churnops] [--model .churnops/models/demo] [--tag TAG] [--yaml] [--dry-run]
#
# Credentials come from Secret Manager secrets `churn-user` and `churn-password` (see
# docs/deploy.md); nothing secret is passed on the command line. --dry-run prints every command
# without running it (no gcloud or docker needed). --yaml deploys deploy/cloudrun/service.yaml
# with `gcloud run services replace` instead of `gcloud run deploy` flags. The image is built
# with docker when its engine answers, else podman; set ENGINE to choose.
set -euo pipefail

PROJECT=${GOOGLE_CLOUD_PROJECT:-}
REGION=${REGION:-europe-west1}
REPOSITORY=${REPOSITORY:-churnops}
SERVICE=${SERVICE:-churnops}
MODEL_DIR=${MODEL_DIR:-.churnops/models/demo}
TAG=${TAG:-}
ENGINE=${ENGINE:-}
USE_YAML=0
DRY_RUN=0

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --project) PROJECT=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --repository) REPOSITORY=$2; shift 2 ;;
    --service) SERVICE=$2; shift 2 ;;
    --model) MODEL_DIR=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --yaml) USE_YAML=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -n "$PROJECT" ] || { echo "deploy.sh: set --project or GOOGLE_CLOUD_PROJECT" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STAGE="$ROOT/build/model"  # the one model directory .dockerignore lets into the build context
if [ -f "$MODEL_DIR/manifest.json" ]; then
  MODEL_DIR=$(cd "$MODEL_DIR" && pwd)
elif [ "$DRY_RUN" -eq 0 ]; then
  echo "deploy.sh: no model in $MODEL_DIR (no manifest.json); train one or pass --model" >&2
  exit 2
fi
if [ -z "$TAG" ]; then
  # The model version names the image, so an image always says which model it serves.
  TAG=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$MODEL_DIR/manifest.json" 2>/dev/null || echo latest)
fi
IMAGE="$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/churnops:$TAG"
SERVICE_ACCOUNT="churnops-run@$PROJECT.iam.gserviceaccount.com"
if [ -z "$ENGINE" ]; then
  # A docker client without a reachable engine does not count.
  if docker info >/dev/null 2>&1 || ! command -v podman >/dev/null 2>&1; then
    ENGINE=docker
  else
    ENGINE=podman
  fi
fi

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

cd "$ROOT"
if [ "$MODEL_DIR" != "$STAGE" ]; then
  run rm -rf "$STAGE"
  run mkdir -p "$ROOT/build"
  run cp -r "$MODEL_DIR" "$STAGE"
fi
run gcloud auth configure-docker "$REGION-docker.pkg.dev" --quiet
# Cloud Run runs linux/amd64 images, whatever machine builds them.
run "$ENGINE" build --platform linux/amd64 --build-arg MODEL_DIR=build/model -t "$IMAGE" "$ROOT"
run "$ENGINE" push "$IMAGE"
if [ "$USE_YAML" -eq 1 ]; then
  rendered="$ROOT/build/cloudrun-service.yaml"
  echo "+ render deploy/cloudrun/service.yaml > $rendered (image $IMAGE, service $SERVICE)"
  if [ "$DRY_RUN" -eq 0 ]; then
    sed -e "s|^\([ -]*image:\) IMAGE\$|\1 $IMAGE|" \
        -e "s|^\( *serviceAccountName:\) SERVICE_ACCOUNT\$|\1 $SERVICE_ACCOUNT|" \
        -e "s|^\( *name:\) SERVICE\$|\1 $SERVICE|" \
        deploy/cloudrun/service.yaml > "$rendered"
  fi
  run gcloud run services replace "$rendered" --project "$PROJECT" --region "$REGION"
  # What --allow-unauthenticated does for `gcloud run deploy`: churnops authenticates callers itself.
  run gcloud run services add-iam-policy-binding "$SERVICE" --project "$PROJECT" \
    --region "$REGION" --member allUsers --role roles/run.invoker
else
  run gcloud run deploy "$SERVICE" \
    --project "$PROJECT" --region "$REGION" --image "$IMAGE" \
    --service-account "$SERVICE_ACCOUNT" \
    --port 8080 --concurrency 80 --cpu 2 --memory 1Gi --min-instances 1 --max-instances 10 \
    --cpu-boost --timeout 60 \
    --startup-probe httpGet.path=/health/ready,httpGet.port=8080,periodSeconds=2,timeoutSeconds=2,failureThreshold=30 \
    --liveness-probe httpGet.path=/health/live,httpGet.port=8080,periodSeconds=15,timeoutSeconds=3 \
    --set-env-vars CHURN_WORKERS=2,CHURN_PASSWORD_FILE=/secrets/churn-password/password \
    --set-secrets CHURN_USER=churn-user:latest,/secrets/churn-password/password=churn-password:latest \
    --allow-unauthenticated
fi
if [ "$DRY_RUN" -eq 1 ]; then
  echo "dry run: nothing was run"
else
  echo "deployed $IMAGE as Cloud Run service $SERVICE ($REGION)"
fi
