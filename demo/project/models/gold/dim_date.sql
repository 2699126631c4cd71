/* lakeforge
description: One row per day of every year that has orders.
checks:
  - {type: unique, column: date_key}
*/
-- every day of the years from the first order's to the last date an order names, built from digits (up to
-- 1,000 years; portable: Daft has no generate_series); the days of a month follow the Gregorian calendar
with bounds as (
    select year(min(order_date)) as first_year,
           year(max(greatest(order_date, required_date, coalesce(shipped_date, order_date)))) as last_year
    from silver.orders
), digits as (
    select 0 as n union all select 1 as n union all select 2 as n union all select 3 as n union all select 4 as n
    union all select 5 as n union all select 6 as n union all select 7 as n union all select 8 as n union all select 9 as n
), years as (
    select b.first_year + h.n * 100 + t.n * 10 + u.n as year
    from bounds b, digits h, digits t, digits u
    where b.first_year + h.n * 100 + t.n * 10 + u.n <= b.last_year
), months as (
    select t.n * 10 + u.n + 1 as month from digits t, digits u where t.n * 10 + u.n < 12
), month_days as (
    select t.n * 10 + u.n + 1 as day from digits t, digits u where t.n * 10 + u.n < 31
), days as (
    select make_date(y.year, m.month, d.day) as day
    from years y, months m, month_days d
    where d.day <= case
        when m.month = 2 and ((y.year % 4 = 0 and y.year % 100 <> 0) or y.year % 400 = 0) then 29
        when m.month = 2 then 28
        when m.month in (4, 6, 9, 11) then 30
        else 31
    end
)
select
    (year(day) * 10000 + month(day) * 100 + day(day))::integer as date_key,
    day                                                      as date,
    year(day)::integer                                       as year,
    quarter(day)::integer                                    as quarter,
    month(day)::integer                                      as month,
    monthname(day)                                           as month_name,
    isodow(day)::integer                                     as day_of_week,
    isodow(day) in (6, 7)                                    as is_weekend
from days
