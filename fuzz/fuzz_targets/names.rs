//! Fuzz the name sanitiser: whatever a user puts in a namespace, a Component
//! name or `spec.image`, the result is an error or a name Quay accepts, and the
//! same input always gives the same name (a crash-and-retry must find the
//! robot it created before).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use quayside::names::{self, RobotRole};
use regex::Regex;

/// Quay's repository-name grammar.
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9][.a-z0-9_-]*(/[a-z0-9][.a-z0-9_-]*)*$").expect("valid regex")
});

/// Quay's robot short-name grammar.
static ROBOT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$").expect("valid regex"));

fuzz_target!(|input: (&str, &str, Option<&str>, &str, bool, u8)| {
    let (namespace, component, image, other, push, slot) = input;
    let role = if push {
        RobotRole::Push
    } else {
        RobotRole::Pull
    };

    let first = names::repository_name(namespace, component, image);
    assert_eq!(
        first,
        names::repository_name(namespace, component, image),
        "repository_name is not deterministic"
    );
    if let Ok(repo) = &first {
        assert!(
            REPOSITORY.is_match(repo),
            "invalid repository name {repo:?}"
        );
        assert!(repo.len() <= 255, "repository name of {} bytes", repo.len());
        check_robot(repo, role, slot);

        // Two repositories never share a robot: a robot's token grants its repository.
        if let Ok(repo2) = names::repository_name(namespace, other, None)
            && &repo2 != repo
        {
            assert_ne!(
                names::robot_short_name(repo, role, slot),
                names::robot_short_name(&repo2, role, slot),
                "repositories {repo:?} and {repo2:?} share a robot"
            );
        }
    }
    // Callers should pass a sanitised repository, but the robot name must be
    // valid whatever it is given.
    check_robot(component, role, slot);
});

fn check_robot(repository: &str, role: RobotRole, slot: u8) {
    let robot = names::robot_short_name(repository, role, slot);
    assert!(ROBOT.is_match(&robot), "invalid robot name {robot:?}");
    assert!(
        (2..=255).contains(&robot.len()),
        "robot name of {} bytes",
        robot.len()
    );
    assert!(
        robot.len() <= names::MAX_ROBOT_SHORT_LEN,
        "robot name of {} bytes is over the documented {}",
        robot.len(),
        names::MAX_ROBOT_SHORT_LEN
    );
    assert_eq!(
        robot,
        names::robot_short_name(repository, role, slot),
        "robot_short_name is not deterministic"
    );
    // The push and pull robots, and a rotation's two slots, are distinct accounts.
    let other_role = match role {
        RobotRole::Push => RobotRole::Pull,
        RobotRole::Pull => RobotRole::Push,
    };
    assert_ne!(robot, names::robot_short_name(repository, other_role, slot));
    assert_ne!(
        robot,
        names::robot_short_name(repository, role, slot.wrapping_add(1))
    );
}
