//! Prints the lifecycle diagram generated from the transition table (as the README shows it).
fn main() {
    print!("{}", journey_spec::model::mermaid());
}
