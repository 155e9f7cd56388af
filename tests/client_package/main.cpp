// Reads a stream's head through the installed client: `consumer URL PATH`.
#include <ordo/client/client.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: consumer URL PATH\n";
    return 2;
  }
  auto c = ordo::client::stream_client::connect({.url = argv[1]});
  if (!c) {
    std::cerr << c.error().code << ": " << c.error().message << "\n";
    return 1;
  }
  auto info = (*c)->head(argv[2]);
  if (!info) {
    std::cout << info.error().code << "\n";
    return 0;
  }
  std::cout << "next_offset " << info->next_offset << "\n";
  return 0;
}
