//! The `journey` command line (see `journey --help`).

fn main() -> std::process::ExitCode {
    eprintln!("journey: not built yet");
    std::process::ExitCode::from(2)
}
