int pbgreet(const char *path);

int main(void) {
    return pbgreet(DATADIR "/greeting.txt");
}
