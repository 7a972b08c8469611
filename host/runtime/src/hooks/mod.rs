//! Extension hooks: what extensions subscribe to, and delivering agent-loop events to them under throttles and budgets.
//!
//! Extensions are plugins of the `extension-plugin` world, loaded, cached,
//! hot-reloaded and sandboxed like tool plugins. The runtime keeps the
//! [`ExtensionSet`] of active hooks; each agent session has its own
//! [`Hooks`], which holds throttle state and failure streaks.

mod call;
mod clock;
mod dispatch;
mod payload;
mod set;
mod spec;
mod stats;
mod stream;
mod throttle;

pub(crate) use call::{HookCall, WarmInstance, call_hook};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::{Blocked, Disabled, Dispatched, Hooks, Injection};
pub use payload::{apply_patch, capped_rewrite};
pub use set::{ActiveHook, ExtensionSet};
pub use spec::{Delivery, ExtensionSpec, HookOutcome, HookPoint, Subscription, Throttle};
pub use stats::{HookCounters, HookStats, HookStatsRow, merge_rows};
pub use stream::StreamTap;
