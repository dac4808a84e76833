"""The local app images tests and benches deploy (v1, v2 healthy; v3 fails its health check)."""

from codeb_infra.sandbox.demo_app import (  # noqa: F401
    APP_PORT,
    IMAGE_REPOSITORY,
    STANDARD_IMAGES,
    build_env_image,
    build_test_image,
    ensure_images,
    TURNING_HEALTH_PATH,
    build_turning_image,
    image_reference,
)
