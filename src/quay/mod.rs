//! Quay API client (reqwest): repositories, robots, permissions, with retries.
