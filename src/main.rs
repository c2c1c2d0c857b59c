fn main() -> std::process::ExitCode {
    bedrud::cli::main()
}
