//! Quay naming rules: sanitised, stable, collision-resistant repository and robot names.
