//! The side-repository writer (git2): one commit per pass, prune, push with retries, pull requests.
