/* lakeforge
checks:
  - {type: unique, column: office_code}
*/
select
    trim(officecode)            as office_code,
    trim(city)                  as city,
    nullif(trim(state), '')     as state,
    trim(country)               as country,
    trim(territory)             as territory
from bronze.crm_offices
qualify row_number() over (partition by officecode order by _lf_extracted_at desc) = 1
