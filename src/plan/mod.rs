//! The pure core: given what is desired and what was observed, decide the
//! steps and the status. No tokio, no clients, no clock (`now` is passed in);
//! nothing here imports an adapter.

pub mod commit;
pub mod commit_message;
pub mod credentials;
pub mod delivery;
pub mod drift;
pub mod folders;
pub mod grant;
pub mod lease;
pub mod link;
pub mod ownership;
pub mod remote_watch;
pub mod requeue;
pub mod rotation;
pub mod rotation_request;
pub mod service_account;
pub mod shard;
pub mod side_path;
pub mod spec;
pub mod status;
pub mod target;
pub mod wake;

pub use commit_message::CommitMessage;
pub use link::plan_link;
pub use rotation::{RotationStep, apply_deadline, plan_rotation, scheduled_rotation_due};
pub use service_account::choose_service_account;
pub use spec::SpecError;
pub use status::{ComponentReport, EnvironmentReport, Problem, Propagation};
pub use target::{DesiredSecret, ObservedSecret, TargetPlan, plan_target_secrets};
