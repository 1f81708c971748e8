//! The pure planner: given what is desired and what was observed, decide the
//! steps. No tokio, no clients, no clock (`now` is passed in).

pub mod commit;
pub mod link;
pub mod rotation;
pub mod service_account;
pub mod target;

pub use link::plan_link;
pub use rotation::{RotationStep, plan_rotation, scheduled_rotation_due};
pub use service_account::choose_service_account;
pub use target::{DesiredSecret, ObservedSecret, TargetPlan, plan_target_secrets};
