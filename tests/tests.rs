//! End-to-end tests: the built binary on `testdata/` and `../shared/captures/`.

mod apps;
mod cases;
mod ci;
mod cli;
mod groundtruth;
mod h2;
mod hostile;
mod live;
mod regressions;
mod shared;
mod tls;
mod tour;
mod util;
mod views;
