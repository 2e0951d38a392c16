#pragma once
// Ctrl-C and SIGTERM set a flag that long loops poll, so they can stop, remove what they were
// writing and exit cleanly instead of dying half-way through a file.
namespace expo {

void install_interrupt_handlers();
bool interrupted();
// Throws expo::Error("interrupted") if a signal arrived.
void check_interrupted();

}  // namespace expo
