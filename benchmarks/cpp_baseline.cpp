// Plain C++ baseline limit order book for benchmarks/bench_cpp.py.
// std::map price levels (one per side, key = price for asks, -price for bids so begin() is best),
// intrusive doubly linked FIFO lists in a preallocated pool, std::unordered_map id -> pool slot.
// Kinds: LIMIT, MARKET, IOC, CANCEL, AMEND (reduce at same price keeps priority, else requeue as
// a LIMIT taker), STOP_MARKET (armed in std::map stop levels; triggered on last trade price,
// run after the current order). No self-trade prevention. Input: raw MESSAGE_DTYPE bytes.
// Usage: cpp_baseline FILE [repeats]  -> one JSON line on stdout.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

struct Msg { int64_t id, owner, price, stop, qty; uint8_t kind; int8_t side; char pad[6]; };
static_assert(sizeof(Msg) == 48, "MESSAGE_DTYPE row is 48 bytes");
enum { LIMIT = 1, MARKET = 2, IOC = 3, STOP_MARKET = 6, CANCEL = 8, AMEND = 9 };

struct Level { int32_t head = -1, tail = -1; };
using Levels = std::map<int64_t, Level>;
struct Order { int64_t id, price, qty; int8_t side; bool stop; int32_t prev, next; Levels* lv; Levels::iterator it; };

struct Book {
  std::vector<Order> pool; std::vector<int32_t> free_;
  std::unordered_map<int64_t, int32_t> ids;
  Levels bids, asks, sell_stops, buy_stops;     // keys: -price, price, -stop, stop (best first)
  std::vector<int32_t> queue; size_t qhead = 0;  // triggered stops
  bool has_last = false; int64_t last = 0;
  uint64_t trades = 0, volume = 0, checksum = 0, rejected = 0;

  explicit Book(size_t n) { pool.reserve(n); free_.reserve(n); ids.reserve(n); queue.reserve(1024); }
  int32_t alloc(int64_t id, int64_t price, int64_t qty, int8_t side, bool stop) {
    int32_t i;
    if (!free_.empty()) { i = free_.back(); free_.pop_back(); } else { i = (int32_t)pool.size(); pool.emplace_back(); }
    Order& o = pool[i]; o.id = id; o.price = price; o.qty = qty; o.side = side; o.stop = stop;
    return i;
  }
  void push(Levels& lv, int64_t key, int32_t i) {  // append to the back of a level's FIFO
    auto it = lv.try_emplace(key).first; Order& o = pool[i];
    o.lv = &lv; o.it = it; o.next = -1; o.prev = it->second.tail;
    if (o.prev >= 0) pool[o.prev].next = i; else it->second.head = i;
    it->second.tail = i;
  }
  void unlink(int32_t i) {
    Order& o = pool[i]; Level& l = o.it->second;
    if (o.prev >= 0) pool[o.prev].next = o.next; else l.head = o.next;
    if (o.next >= 0) pool[o.next].prev = o.prev; else l.tail = o.prev;
    if (l.head < 0) o.lv->erase(o.it);
  }
  void on_trade(int64_t px, int64_t q) {
    ++trades; volume += (uint64_t)q; checksum += (uint64_t)px * (uint64_t)q; has_last = true; last = px;
    while (!sell_stops.empty() && -sell_stops.begin()->first >= px) {   // sell stops: trade <= stop
      auto it = sell_stops.begin();
      for (int32_t i = it->second.head; i >= 0; i = pool[i].next) { queue.push_back(i); ids.erase(pool[i].id); }
      sell_stops.erase(it);
    }
    while (!buy_stops.empty() && buy_stops.begin()->first <= px) {      // buy stops: trade >= stop
      auto it = buy_stops.begin();
      for (int32_t i = it->second.head; i >= 0; i = pool[i].next) { queue.push_back(i); ids.erase(pool[i].id); }
      buy_stops.erase(it);
    }
  }
  // Match a taker against the opposite side; returns the remaining quantity.
  int64_t match(int8_t side, bool limited, int64_t limit, int64_t qty) {
    Levels& opp = side > 0 ? asks : bids;
    while (qty > 0 && !opp.empty()) {
      auto it = opp.begin();
      int64_t px = side > 0 ? it->first : -it->first;
      if (limited && (side > 0 ? px > limit : px < limit)) break;
      Level& l = it->second;
      while (qty > 0 && l.head >= 0) {
        int32_t m = l.head; Order& mk = pool[m];
        int64_t q = mk.qty < qty ? mk.qty : qty;
        mk.qty -= q; qty -= q;
        if (mk.qty == 0) {
          l.head = mk.next;
          if (l.head >= 0) pool[l.head].prev = -1; else l.tail = -1;
          ids.erase(mk.id); free_.push_back(m);
        }
        on_trade(px, q);
      }
      if (l.head < 0) opp.erase(it);
    }
    return qty;
  }
  void rest_or_free(int32_t i, int64_t rem, bool rest) {
    Order& o = pool[i];
    if (rem > 0 && rest) { o.qty = rem; push(o.side > 0 ? bids : asks, o.side > 0 ? -o.price : o.price, i); ids[o.id] = i; }
    else free_.push_back(i);
  }
  void run_stops() {
    while (qhead < queue.size()) {
      int32_t i = queue[qhead++];
      match(pool[i].side, false, 0, pool[i].qty);  // STOP_MARKET runs as MARKET; residual cancelled
      free_.push_back(i);
    }
    queue.clear(); qhead = 0;
  }
  void process(const Msg& m) {
    switch (m.kind) {
      case LIMIT: case IOC: case MARKET: {
        if (ids.count(m.id)) { ++rejected; return; }
        int32_t i = alloc(m.id, m.price, m.qty, m.side, false);
        int64_t rem = match(m.side, m.kind != MARKET, m.price, m.qty);
        rest_or_free(i, rem, m.kind == LIMIT);
        break;
      }
      case STOP_MARKET: {
        if (ids.count(m.id) || (has_last && (m.side > 0 ? last >= m.stop : last <= m.stop))) { ++rejected; return; }
        int32_t i = alloc(m.id, 0, m.qty, m.side, true);
        push(m.side > 0 ? buy_stops : sell_stops, m.side > 0 ? m.stop : -m.stop, i);
        ids.emplace(m.id, i);
        return;
      }
      case CANCEL: {
        auto f = ids.find(m.id);
        if (f == ids.end()) { ++rejected; return; }
        int32_t i = f->second; ids.erase(f); unlink(i); free_.push_back(i);
        return;
      }
      case AMEND: {
        auto f = ids.find(m.id);
        if (f == ids.end() || pool[f->second].stop) { ++rejected; return; }
        int32_t i = f->second; Order& o = pool[i];
        if (m.price == o.price && m.qty <= o.qty) { o.qty = m.qty; return; }  // KEPT_PRIORITY
        ids.erase(f); unlink(i); o.price = m.price;                           // REQUEUED
        int64_t rem = match(o.side, true, m.price, m.qty);
        rest_or_free(i, rem, true);
        break;
      }
      default: ++rejected; return;
    }
    run_stops();
  }
};

int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: %s FILE [repeats]\n", argv[0]); return 2; }
  int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) { std::perror(argv[1]); return 2; }
  std::fseek(f, 0, SEEK_END); long bytes = std::ftell(f); std::fseek(f, 0, SEEK_SET);
  std::vector<Msg> msgs(bytes / sizeof(Msg));
  if (std::fread(msgs.data(), sizeof(Msg), msgs.size(), f) != msgs.size()) { std::perror("read"); return 2; }
  std::fclose(f);
  double best = 1e300; uint64_t trades = 0, volume = 0, checksum = 0, rejected = 0;
  for (int r = 0; r < repeats; ++r) {
    Book book(msgs.size() + 1);
    auto t0 = std::chrono::steady_clock::now();
    for (const Msg& m : msgs) book.process(m);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best) best = s;
    trades = book.trades; volume = book.volume; checksum = book.checksum; rejected = book.rejected;
  }
  std::printf("{\"messages\": %zu, \"trades\": %llu, \"traded_qty\": %llu, \"checksum\": %llu, "
              "\"rejected\": %llu, \"seconds\": %.9f, \"repeats\": %d}\n", msgs.size(),
              (unsigned long long)trades, (unsigned long long)volume, (unsigned long long)checksum,
              (unsigned long long)rejected, best, repeats);
  return 0;
}
