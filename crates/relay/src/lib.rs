//! `relay`: the front door users call. It relays an allowlist of pool-selector's read routes
//! ([`key::RELAYED_ROUTES`]) through a two-level cache (in-process, then Redis shared by every replica),
//! and holds a burst on a cold cache: concurrent misses for one key send one upstream request, stale
//! entries are served while one refresh runs, and Redis being down only turns caching off.
//!
//! * [`key`]: the allowlist and the canonical form of a request (its cache key).
//! * [`entry`]: a cached answer and its life cycle (fresh, stale, expired), stored as compact bytes, and
//!   how an answer was obtained ([`entry::CacheStatus`], the `X-Cache` header).
//! * [`store`]: the in-process cache and Redis, with timeouts and a breaker.
//! * [`upstream`]: the HTTP client to pool-selector.
//! * [`relay`]: the caching logic (hit, stale-while-revalidate, coalescing, cross-replica lock).
//! * [`page`]: the ranking page at `/` (HTML and inline SVG, rendered by pure functions).
//! * [`routes`], [`startup`], [`settings`], [`metrics`]: the service around it.
//!
//! Modules depend on each other one way only: `startup` → `routes` → `page`, `relay` → `store`,
//! `upstream` → `metrics`, `key`, `entry` (and `pool_core::clock`).

pub mod entry;
pub mod key;
pub mod limit;
pub mod metrics;
pub mod page;
pub mod relay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod store;
pub mod upstream;

pub use settings::Settings;
pub use startup::Application;
